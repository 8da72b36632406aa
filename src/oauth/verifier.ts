import { createHash, hash, X509Certificate, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { AuditInput } from '../audit/index.ts';
import { constantTimeEqual } from '../core/crypto.ts';
import { verifyDpopProof, DPOP_IAT_WINDOW_SECONDS, type DpopNonces } from './dpop.ts';
import { TokenError, type TokenErrorCode } from './errors.ts';
import type { AccessTokenRequest, TokenConfirmation, VerifiedAccessToken, VerifyAccessTokenOptions } from './types.ts';

/** The only algorithm Mandate signs access tokens with. An allowlist, so `alg: none` and HS256-with-the-public-key never verify. */
export const ACCESS_TOKEN_ALGORITHMS = ['RS256'];

export type IdentityState = 'active' | 'suspended' | 'decommissioned' | 'missing';

/** What the verifier needs of an agent or workload: its status, and the instant before which its tokens are dead. */
export interface IdentityRecord {
  status: IdentityState;
  /** Epoch ms (set by suspension and decommissioning, kept by resume); null when never set. */
  tokensNotBefore: number | null;
}

export interface VerifierDependencies {
  issuer: string;
  keys: { resolve(kid: string): Promise<KeyObject | undefined> };
  revocations: { isRevoked(jti: string): boolean };
  identities: { state(id: string): Promise<IdentityRecord> };
  humans: { active(id: string): Promise<boolean> };
  /** Records a DPoP proof's jti; false when it was seen before (on any replica). */
  replay: { claim(key: string, expiresAt: Date): Promise<boolean> };
  nonces: DpopNonces;
  requireDpopNonce: boolean;
  audit(input: AuditInput): Promise<unknown>;
  now?: () => number;
}

/** Leeway for `exp`/`nbf`/`iat` (clock skew between replicas). */
const VERIFIED_CLOCK_TOLERANCE_SECONDS = 5;
/** Tokens kept verified per process (a few MB at most: claims only, keyed by a 43-character hash). */
const VERIFIED_CACHE_SIZE = 10_000;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** Claims Mandate puts in access tokens besides RFC 9068's. */
export const CLAIM_IDENTITY = 'identity_id';
/**
 * The token's issue instant in milliseconds, never earlier than the tokens-not-before of any identity in
 * it as the issuer read it. `iat` has whole seconds: a token issued in the same second as a suspension,
 * before it or after the resume, could not be told apart by `iat` alone.
 */
export const CLAIM_ISSUED_MS = 'iat_ms';

/**
 * When a token counts as issued, for tokens-not-before: `iat_ms`, or (a token without it, from before the
 * claim existed) the start of its `iat` second, the earliest it can have been issued, so it is refused
 * whenever it might predate the instant.
 */
export function issuedAtMs(claims: Record<string, unknown>): number {
  const precise = claims[CLAIM_ISSUED_MS];
  if (typeof precise === 'number' && Number.isFinite(precise)) return precise;
  return typeof claims.iat === 'number' && Number.isFinite(claims.iat) ? claims.iat * 1000 : 0;
}

interface ActClaim {
  sub?: unknown;
  act?: unknown;
}

/** RFC 8693 §4.1: outermost `act` is the current actor, nested ones are earlier actors. */
export function actChainOf(act: unknown, limit = 16): string[] {
  const chain: string[] = [];
  let current = act as ActClaim | undefined;
  while (current && typeof current === 'object' && chain.length < limit) {
    if (typeof current.sub !== 'string') break;
    chain.push(current.sub);
    current = current.act as ActClaim | undefined;
  }
  return chain;
}

export function certificateThumbprint(certificate: X509Certificate | string): string {
  const cert = typeof certificate === 'string' ? new X509Certificate(certificate) : certificate;
  return createHash('sha256').update(cert.raw).digest('base64url');
}

/**
 * Verifies access tokens at Mandate's resource servers: signature and issuer (RS256 only), `typ` at+jwt
 * (RFC 9068 §4), expiry, audience, revocation, the status of every identity in the chain (suspension
 * takes effect at once), and the sender constraint: a DPoP proof (RFC 9449 §7) or the mTLS certificate
 * (RFC 8705 §3). Every denial is audited.
 */
export class AccessTokenVerifier {
  readonly #deps: VerifierDependencies;
  /**
   * Tokens whose signature, issuer and `typ` this process has already checked, by SHA-256 of the token
   * string. An agent presents the same token on every call; the RS256 verification and base64/JSON
   * decoding were the largest share of the gateway's own per-call time. Only that pure, immutable part
   * is cached: expiry and the signing key are re-checked on every hit, and everything else (audience,
   * revocation, identity and user status, sender constraint, scopes) runs on every call as before.
   * Bounded: the oldest entry goes first.
   */
  readonly #verified = new Map<string, { kid: string; key: KeyObject; claims: Record<string, unknown> }>();

  constructor(deps: VerifierDependencies) {
    this.#deps = deps;
  }

  async verify(request: AccessTokenRequest, options: VerifyAccessTokenOptions): Promise<VerifiedAccessToken> {
    try {
      return await this.#verify(request, options);
    } catch (error) {
      const coded = error instanceof TokenError ? error : new TokenError('VERIFIER_UNAVAILABLE', 'the token could not be checked');
      // Fail closed and leave a trace: every refused token is in the audit chain.
      if (coded.code !== 'TOKEN_MISSING' && coded.code !== 'DPOP_NONCE_REQUIRED') {
        const hint = peek(request.authorization);
        await this.#deps
          .audit({
            actor: hint.identity ? `${hint.identity.startsWith('wkl_') ? 'workload' : 'agent'}:${hint.identity}` : hint.clientId ? `client:${hint.clientId}` : 'anonymous',
            action: 'token.verify',
            target: hint.jti ?? null,
            outcome: 'deny',
            details: { code: coded.code, reason: coded.message, audience: options.audience, url: request.url },
          })
          .catch(() => undefined);
      }
      throw coded;
    }
  }

  async #verify(request: AccessTokenRequest, options: VerifyAccessTokenOptions): Promise<VerifiedAccessToken> {
    const deps = this.#deps;
    const now = deps.now?.() ?? Date.now();
    const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i.exec(request.authorization?.trim() ?? '');
    if (!match) throw new TokenError(request.authorization ? 'TOKEN_INVALID' : 'TOKEN_MISSING', request.authorization ? 'the Authorization header is malformed' : 'an access token is required');
    const scheme = match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    const token = match[2]!;
    if (token.length > 16_384) throw new TokenError('TOKEN_INVALID', 'the access token is too long');

    const claims = await this.#validate(token, now);

    const audience = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === 'string') : [];
    const wanted = Array.isArray(options.audience) ? options.audience : [options.audience];
    if (!audience.some((a) => wanted.includes(a))) throw new TokenError('TOKEN_AUDIENCE_MISMATCH', 'the access token is not meant for this resource');

    const jti = claims.jti as string;
    await this.#checkStatus(claims);
    const identityId = typeof claims[CLAIM_IDENTITY] === 'string' ? (claims[CLAIM_IDENTITY] as string) : null;
    const actChain = actChainOf(claims.act);
    const subject = claims.sub as string;
    const userId = subject.startsWith('hum_') ? subject : null;

    const cnf = (claims.cnf && typeof claims.cnf === 'object' ? claims.cnf : null) as TokenConfirmation | null;
    await this.#checkSenderConstraint(request, scheme, token, cnf, options, now);

    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
    const missing = (options.requiredScopes ?? []).filter((s) => !scopes.includes(s));
    if (missing.length > 0) throw new TokenError('TOKEN_SCOPE_INSUFFICIENT', `the access token lacks scope ${missing.join(' ')}`, { details: { missing } });

    return {
      subject,
      clientId: claims.client_id as string,
      identityId: actChain[0] && !actChain[0].startsWith('hum_') ? actChain[0] : identityId,
      actChain,
      userId,
      scopes,
      cnf,
      tokenId: jti,
      audience,
      expiresAt: new Date((claims.exp as number) * 1000),
      claims,
    };
  }

  /**
   * Checks a token without a request: signature, issuer, expiry, and (unless `signatureOnly`) revocation
   * and the status of every identity in its chain. For introspection and revocation.
   */
  async inspect(token: string, options: { signatureOnly?: boolean } = {}): Promise<Record<string, unknown>> {
    const claims = await this.#validate(token, this.#deps.now?.() ?? Date.now());
    if (!options.signatureOnly) await this.#checkStatus(claims);
    return claims;
  }

  async #validate(token: string, now: number): Promise<Record<string, unknown>> {
    const cacheKey = hash('sha256', token, 'base64url');
    const hit = this.#verified.get(cacheKey);
    if (hit) {
      const claims = hit.claims;
      // Same rules jwtVerify applied (RFC 7519 §4.1.4, with its 5 s tolerance), against this call's clock.
      if ((claims.exp as number) <= Math.floor(now / 1000) - VERIFIED_CLOCK_TOLERANCE_SECONDS) {
        this.#verified.delete(cacheKey);
        throw new TokenError('TOKEN_EXPIRED', 'the access token has expired');
      }
      if (typeof claims.nbf === 'number' && claims.nbf > Math.floor(now / 1000) + VERIFIED_CLOCK_TOLERANCE_SECONDS) {
        throw new TokenError('TOKEN_INVALID', 'the access token is invalid (ERR_JWT_CLAIM_VALIDATION_FAILED)');
      }
      // The key that verified it must still be one Mandate accepts (a retired-and-expired or removed key stops its tokens).
      if ((await this.#deps.keys.resolve(hit.kid)) === hit.key) return claims;
      this.#verified.delete(cacheKey);
    }
    const { claims, kid, key } = await this.#validateSignature(token, now);
    // Frozen (deeply): every caller gets the same object, so none may change what the next call sees.
    const frozen = deepFreeze(claims);
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(cacheKey, { kid, key, claims: frozen });
    return frozen;
  }

  async #validateSignature(token: string, now: number): Promise<{ claims: Record<string, unknown>; kid: string; key: KeyObject }> {
    const deps = this.#deps;
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenError('TOKEN_INVALID', 'the access token is not a JWT');
    }
    if (typeof header.alg !== 'string' || !ACCESS_TOKEN_ALGORITHMS.includes(header.alg)) {
      throw new TokenError('TOKEN_INVALID', `access tokens signed with ${String(header.alg)} are not accepted`);
    }
    if (typeof header.kid !== 'string') throw new TokenError('TOKEN_INVALID', 'the access token names no key');
    const key = await deps.keys.resolve(header.kid);
    if (!key) throw new TokenError('TOKEN_INVALID', 'the access token was not signed by a Mandate key');

    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, key, {
        issuer: deps.issuer,
        algorithms: ACCESS_TOKEN_ALGORITHMS,
        typ: 'at+jwt',
        currentDate: new Date(now),
        clockTolerance: VERIFIED_CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id', 'aud'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new TokenError('TOKEN_EXPIRED', 'the access token has expired');
      throw new TokenError('TOKEN_INVALID', `the access token is invalid (${(error as { code?: string }).code ?? 'verification failed'})`);
    }

    return { claims, kid: header.kid, key };
  }

  async #checkStatus(claims: Record<string, unknown>): Promise<void> {
    const deps = this.#deps;
    const jti = claims.jti as string;
    if (deps.revocations.isRevoked(jti)) throw new TokenError('TOKEN_REVOKED', 'the access token has been revoked');

    const identityId = typeof claims[CLAIM_IDENTITY] === 'string' ? (claims[CLAIM_IDENTITY] as string) : null;
    const actChain = actChainOf(claims.act);
    // Every non-human in the chain must still be active: one suspension stops the whole delegation.
    for (const id of new Set([...(identityId ? [identityId] : []), ...actChain.filter((a) => !a.startsWith('hum_'))])) {
      const { status: state, tokensNotBefore } = await deps.identities.state(id);
      if (state === 'suspended') throw new TokenError('IDENTITY_SUSPENDED', `identity ${id} is suspended`);
      if (state !== 'active') throw new TokenError('IDENTITY_DECOMMISSIONED', `identity ${id} is ${state === 'missing' ? 'unknown' : 'decommissioned'}`);
      // Suspension (and so the kill switch) kills every token issued before it; a resume needs new ones.
      if (tokensNotBefore !== null && issuedAtMs(claims) < tokensNotBefore) throw new TokenError('TOKEN_REVOKED', `the access token was issued before identity ${id} was suspended`);
    }
    const subject = claims.sub as string;
    const userId = subject.startsWith('hum_') ? subject : null;
    if (userId && !(await deps.humans.active(userId))) throw new TokenError('TOKEN_REVOKED', 'the user the token acts for is no longer active');

  }

  async #checkSenderConstraint(request: AccessTokenRequest, scheme: 'Bearer' | 'DPoP', token: string, cnf: TokenConfirmation | null, options: VerifyAccessTokenOptions, now: number): Promise<void> {
    const deps = this.#deps;
    if (cnf?.jkt !== undefined) {
      // RFC 9449 §7.1: a DPoP-bound token travels under the DPoP scheme with a proof for this request.
      if (scheme !== 'DPoP') throw new TokenError('DPOP_PROOF_REQUIRED', 'this token is DPoP-bound: use the DPoP scheme with a proof');
      if (!request.dpop || request.dpop.includes(',')) throw new TokenError('DPOP_PROOF_REQUIRED', 'exactly one DPoP proof is required', { dpopNonce: deps.nonces.current() });
      const proof = await verifyDpopProof(request.dpop, {
        method: request.method,
        url: request.url,
        accessToken: token,
        nonces: deps.nonces,
        requireNonce: options.requireDpopNonce ?? deps.requireDpopNonce,
        now,
      });
      if (!constantTimeEqual(proof.jkt, cnf.jkt)) throw new TokenError('DPOP_PROOF_INVALID', 'the DPoP proof was signed with a key the token is not bound to');
      // §11.1: a proof is single-use; the cache is shared by every replica through the store.
      const fresh = await deps.replay.claim(`dpop:${proof.jkt}:${proof.jti}`, new Date((proof.iat + DPOP_IAT_WINDOW_SECONDS * 2) * 1000));
      if (!fresh) throw new TokenError('DPOP_REPLAY', 'this DPoP proof has been used before');
    } else if (scheme === 'DPoP') {
      throw new TokenError('TOKEN_INVALID', 'the DPoP scheme was used with a token that is not DPoP-bound');
    }
    if (cnf?.['x5t#S256'] !== undefined) {
      // RFC 8705 §3: the presenter must hold the certificate the token was issued to.
      if (!request.clientCertificate) throw new TokenError('MTLS_CERTIFICATE_REQUIRED', 'this token is bound to a client certificate: present it over mutual TLS');
      let thumbprint: string;
      try {
        thumbprint = certificateThumbprint(request.clientCertificate);
      } catch {
        throw new TokenError('TOKEN_BINDING_MISMATCH', 'the client certificate is unreadable');
      }
      if (!constantTimeEqual(thumbprint, cnf['x5t#S256'])) throw new TokenError('TOKEN_BINDING_MISMATCH', 'the client certificate is not the one the token is bound to');
    }
  }
}

/** Reads (without trusting) who a token claims to be, for the audit record of a denial. */
function peek(authorization: string | undefined): { jti?: string; clientId?: string; identity?: string } {
  try {
    const token = authorization?.split(' ')[1];
    const body = token?.split('.')[1];
    if (!body || body.length > 16_384) return {};
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
    const text = (v: unknown) => (typeof v === 'string' && /^[\w.:@/-]{1,200}$/.test(v) ? v : undefined);
    const out: { jti?: string; clientId?: string; identity?: string } = {};
    const jti = text(claims.jti);
    const clientId = text(claims.client_id);
    const identity = text(claims[CLAIM_IDENTITY]);
    if (jti) out.jti = jti;
    if (clientId) out.clientId = clientId;
    if (identity) out.identity = identity;
    return out;
  } catch {
    return {};
  }
}

export type { TokenErrorCode };
