import type { IncomingMessage, ServerResponse } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/index.ts';
import type { Config } from '../core/config.ts';
import type { IdentityService } from '../identity/index.ts';
import type { Store, StoreLogger } from '../store/index.ts';
import { createAdapterFactory, CLIENT_CHANGED, pruneExpiredPayloads, storableId } from './adapter.ts';
import { ClientService, TOKEN_EXCHANGE } from './clients.ts';
import { MandateError } from '../core/errors.ts';
import { DelegationService } from './delegations.ts';
import { tokenExchangeGrant, TOKEN_EXCHANGE_PARAMS } from './token-exchange.ts';
import { oauthConfigFrom, type OAuthConfig } from './config.ts';
import { DpopNonces } from './dpop.ts';
import { protectedResourceMetadata, type ProtectedResourceMetadata } from './metadata.ts';
import { buildProvider, deriveKey, type ClientInfo, type ProviderDependencies } from './provider.ts';
import { KEYS_CHANGED, SigningKeys } from './signing-keys.ts';
import { FederationService } from './federation.ts';
import { CertificateAuthority } from '../pki/index.ts';
import { importJWK, SignJWT } from 'jose';
type KeyLike = Parameters<SignJWT['sign']>[0];
import { randomToken } from '../core/crypto.ts';
import { isMandateError } from '../core/errors.ts';
import { JWT_BEARER } from './clients.ts';
import { JWT_TOKEN_TYPE } from './token-exchange.ts';
import { ReplayCache, RevocationList, StatusCache } from './state.ts';
import type { AccessTokenRequest, VerifiedAccessToken, VerifyAccessTokenOptions } from './types.ts';
import { AccessTokenVerifier, CLAIM_ISSUED_MS } from './verifier.ts';

export interface OAuthServiceDependencies {
  config: Config;
  store: Store;
  audit: AuditLog;
  identity: IdentityService;
  oauth?: Partial<Record<keyof OAuthConfig, unknown>>;
  /** Where background failures (pruning, issuance records) are reported; silent if absent. */
  logger?: StoreLogger | undefined;
}

/** Extra grant types registered by other modules of this folder (token exchange, federation). */
export type GrantRegistration = ProviderDependencies['grants'][number];

/**
 * Mandate's OAuth 2.1 authorization server and the resource-server side of its tokens. One per process;
 * all state that matters lives in the store, so any number of replicas can run side by side.
 */
export class OAuthService {
  readonly settings: OAuthConfig;
  readonly issuer: string;
  readonly clients: ClientService;
  readonly delegations: DelegationService;
  readonly federation: FederationService;
  readonly ca: CertificateAuthority;
  /** Origin of the mTLS listener (https://host:port) once it listens. */
  mtlsOrigin: string | undefined;
  /** Resolves when the mTLS listener listens (set by the server when MANDATE_MTLS_PORT is given). */
  mtlsReady: Promise<void> | undefined;
  readonly keys: SigningKeys;
  readonly revocations: RevocationList;
  readonly status: StatusCache;
  readonly replay: ReplayCache;
  readonly dpopNonces: DpopNonces;
  readonly #deps: OAuthServiceDependencies;
  readonly #verifier: AccessTokenVerifier;
  readonly #clientInfo = new Map<string, ClientInfo | null>();
  readonly #grants: GrantRegistration[] = [];
  readonly #unsubscribe: (() => void)[] = [];
  #provider: Provider | undefined;
  #caCertificate: X509Certificate | undefined;

  constructor(deps: OAuthServiceDependencies) {
    this.#deps = deps;
    this.settings = oauthConfigFrom(process.env, deps.oauth ?? {});
    this.issuer = deps.config.publicUrl;
    this.keys = new SigningKeys(deps.store, deps.config.masterKey, { maxTokenSeconds: this.settings.accessTokenSeconds });
    this.revocations = new RevocationList(deps.store);
    this.status = new StatusCache(deps.store, deps.identity);
    this.replay = new ReplayCache(deps.store);
    this.dpopNonces = new DpopNonces(deriveKey(deps.config.masterKey, 'dpop-nonce-rs'));
    this.clients = new ClientService(deps.store, deps.audit, deps.identity, { trustDomain: this.trustDomain });
    this.ca = new CertificateAuthority(deps.store, deps.audit, { masterKey: deps.config.masterKey, trustDomain: this.trustDomain, certificateSeconds: this.settings.certificateSeconds });
    this.federation = new FederationService(deps.store, deps.audit, this.replay, { allowHttp: deps.config.mode !== 'production', allowPrivateNetworks: this.settings.federationAllowPrivateNetworks });
    this.delegations = new DelegationService(deps.store, deps.audit, { defaultDays: this.settings.delegationDays });
    this.#verifier = new AccessTokenVerifier({
      issuer: this.issuer,
      keys: this.keys,
      revocations: this.revocations,
      identities: { state: (id) => this.status.record(id) },
      humans: { active: (id) => this.status.active(id) },
      replay: this.replay,
      nonces: this.dpopNonces,
      requireDpopNonce: this.settings.requireDpopNonce,
      audit: (input) => deps.audit.append(input),
    });
    this.#grants.push({
      name: TOKEN_EXCHANGE,
      params: TOKEN_EXCHANGE_PARAMS,
      handler: tokenExchangeGrant({
        issuer: this.issuer,
        config: this.settings,
        verifier: this.#verifier,
        delegations: this.delegations,
        audit: deps.audit,
        clientInfo: (id) => this.clientInfo(id),
        devMode: deps.config.mode !== 'production',
        federated: (provider, ctx) => this.#federated?.(provider, ctx) ?? Promise.resolve(false),
      }),
    });
  }

  #federated: ((provider: Provider, ctx: unknown) => Promise<boolean>) | undefined;

  /** Federation handles subject tokens from external issuers (set by the federation module). */
  setFederationHandler(handler: (provider: Provider, ctx: unknown) => Promise<boolean>): void {
    this.#federated = handler;
  }

  get trustDomain(): string {
    return this.settings.trustDomain ?? new URL(this.#deps.config.publicUrl).hostname;
  }

  /** Loads keys and revocations, subscribes to change events, builds the authorization server. */
  async init(): Promise<void> {
    const { store } = this.#deps;
    await this.keys.current();
    await this.keys.reload();
    await this.revocations.load();
    this.#caCertificate = await this.ca.rootCertificate();
    // Expired artifacts, replay entries and revocations are pruned every 10 minutes (idempotent on every replica).
    this.#pruneTimer = setInterval(() => void this.prune().catch((error: unknown) => this.#deps.logger?.warn({ err: error }, 'oauth: pruning expired artifacts failed; retried in 10 minutes')), 600_000);
    this.#pruneTimer.unref();
    this.#unsubscribe.push(
      this.revocations.subscribe(),
      this.status.subscribe(),
      store.events.on(CLIENT_CHANGED, (event) => {
        this.#clientInfo.delete(String((event.data as { clientId?: string }).clientId));
      }),
      store.events.on('resync', () => this.#clientInfo.clear()),
      // Rotation on any replica: rebuild the provider so it signs with the new key.
      store.events.on(KEYS_CHANGED, () => {
        this.#provider = undefined;
        this.#signer = undefined;
        // A failed reload reaches the change-event bus, which logs it and resyncs again later.
        return this.keys.reload();
      }),
    );
  }

  close(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
  }

  #pruneTimer: NodeJS.Timeout | undefined;

  /** Registers an extra token-endpoint grant (before the first request). */
  addGrant(grant: GrantRegistration): void {
    this.#grants.push(grant);
    this.#provider = undefined;
  }

  /** Called when the mTLS listener is up: discovery then advertises its endpoint aliases (RFC 8705 §5). */
  setMtlsOrigin(origin: string): void {
    this.mtlsOrigin = origin;
    this.#provider = undefined;
  }

  /** The authorization server, rebuilt after a key rotation. */
  async provider(): Promise<Provider> {
    // Hot path: the provider is rebuilt only when KEYS_CHANGED (a rotation on any replica) drops it.
    if (this.#provider) return this.#provider;
    const current = await this.keys.current();
    const { store, identity, config, audit } = this.#deps;
    this.#provider = buildProvider(
      {
        issuer: this.issuer,
        masterKey: config.masterKey,
        config: this.settings,
        signingJwk: current.privateJwk as Record<string, unknown>,
        adapter: createAdapterFactory(store, {
          // A suspended or decommissioned identity's clients do not exist, as far as the token endpoint knows.
          clientFilter: async (_clientId, identityId) => !identityId || (await this.status.state(identityId)) === 'active',
          // A code or refresh token issued before its agent's suspension is dead like its access tokens.
          artifacts: { stamp: (payload) => this.#artifactStamp(payload), alive: (payload, issuedMs) => this.#artifactAlive(payload, issuedMs) },
        }),
        issuedAtMs: (identityIds) => this.issuedAtMs(identityIds),
        clientInfo: (clientId) => this.clientInfo(clientId),
        findHuman: async (id) => {
          try {
            const human = await identity.getHuman(id);
            return human.status === 'active' ? { id: human.id, email: human.email, displayName: human.displayName } : undefined;
          } catch {
            return undefined;
          }
        },
        caCertificate: () => this.#caCertificate,
        corsOrigins: new Set(config.corsOrigins),
        mtlsOrigin: this.mtlsOrigin,
        grants: this.#grants,
        onEvent: (kind, ctx, error) => {
          const clientId: string | undefined = ctx?.oidc?.client?.clientId ?? ctx?.oidc?.params?.client_id ?? basicClientId(ctx?.headers?.authorization);
          const grantType: string | undefined = ctx?.oidc?.params?.grant_type;
          if (kind === 'grant.success') {
            // Issuance is a decision: recorded, group-committed off the response path.
            void audit
              .append({ actor: clientId ? `client:${clientId}` : 'anonymous', action: 'token.issue', target: clientId ?? null, outcome: 'success', details: { grantType, resource: ctx?.oidc?.params?.resource ?? null, scope: ctx?.oidc?.params?.scope ?? null } })
              .catch((error: unknown) => this.#deps.logger?.error({ err: error }, 'oauth: recording a token issuance in the audit chain failed'));
          } else {
            void audit
              .append({
                actor: typeof clientId === 'string' && clientId.length < 200 ? `client:${clientId}` : 'anonymous',
                action: 'token.issue',
                target: typeof clientId === 'string' && clientId.length < 200 ? clientId : null,
                outcome: 'deny',
                details: { grantType: typeof grantType === 'string' ? grantType.slice(0, 200) : null, error: (error as { error?: string })?.error ?? 'server_error', reason: ((error as { error_description?: string })?.error_description ?? error?.message ?? '').slice(0, 500) },
              })
              .catch((error: unknown) => this.#deps.logger?.error({ err: error }, 'oauth: recording a token issuance in the audit chain failed'));
          }
        },
      },
      config.mode !== 'production',
    );
    return this.#provider;
  }

  /** Hands a raw Node request to the authorization server; resolves once the response is sent. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const provider = await this.provider();
    await new Promise<void>((resolve, reject) => {
      res.once('finish', resolve);
      res.once('close', resolve);
      Promise.resolve(provider.callback()(req, res)).catch(reject);
    });
  }

  async clientInfo(clientId: string): Promise<ClientInfo | undefined> {
    if (!storableId(clientId)) return undefined;
    const cached = this.#clientInfo.get(clientId);
    if (cached !== undefined) return cached ?? undefined;
    const info = (await this.clients.describe(clientId)) ?? null;
    if (this.#clientInfo.size > 50_000) this.#clientInfo.clear();
    this.#clientInfo.set(clientId, info);
    return info ?? undefined;
  }

  /**
   * The issue instant to stamp on a new token naming these identities (`iat_ms`): now, or the latest
   * tokens-not-before among them when that is later (it is put a little in the future, see
   * TOKENS_NOT_BEFORE_MARGIN_MS), so a token issued after a resume is never taken for one issued before
   * the suspension. Read through the same event-fed cache as verification.
   *
   * Null when one of them is not active (any more): the issuance checked the client before a suspension
   * that has committed since. Stamped with that suspension's instant, the token would count as issued
   * after it and come back on resume; it must not be issued at all.
   */
  async issuedAtMs(identityIds: readonly string[]): Promise<number | null> {
    let stamp = Date.now();
    for (const id of new Set(identityIds)) {
      const { status, tokensNotBefore } = await this.status.record(id);
      if (status !== 'active') return null;
      if (tokensNotBefore !== null && tokensNotBefore > stamp) stamp = tokensNotBefore;
    }
    return stamp;
  }

  /** The agent or workload behind an authorization code's or refresh token's client, if any. */
  async #artifactIdentity(payload: Record<string, unknown>): Promise<string | null> {
    const clientId = payload.clientId;
    return typeof clientId === 'string' ? ((await this.clientInfo(clientId))?.identityId ?? null) : null;
  }

  async #artifactStamp(payload: Record<string, unknown>): Promise<number> {
    const identityId = await this.#artifactIdentity(payload);
    // Not active any more (see issuedAtMs): stored dead, so it never works, even after a resume.
    return (await this.issuedAtMs(identityId ? [identityId] : [])) ?? 0;
  }

  /** False for an authorization code or refresh token issued before its agent's tokens-not-before. */
  async #artifactAlive(payload: Record<string, unknown>, issuedMs: number | null): Promise<boolean> {
    const identityId = await this.#artifactIdentity(payload);
    if (!identityId) return true;
    const { status, tokensNotBefore } = await this.status.record(identityId);
    if (status !== 'active') return false;
    if (tokensNotBefore === null) return true;
    if (issuedMs !== null) return issuedMs >= tokensNotBefore;
    // Stored before stamps existed: whole seconds, so the start of the earliest (a rotated refresh
    // token's first `iiat`) is the earliest it can have been issued.
    const seconds = [payload.iat, payload.iiat].filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    return seconds.length > 0 && Math.min(...seconds) * 1000 >= tokensNotBefore;
  }

  /**
   * Verifies an access token presented to one of Mandate's resource servers (its API, the MCP gateway).
   * Throws TokenError with a stable code; every refusal is audited.
   */
  verifyAccessToken(request: AccessTokenRequest, options: VerifyAccessTokenOptions): Promise<VerifiedAccessToken> {
    return this.#verifier.verify(request, options);
  }

  /** The verifier, for checks without a request (introspection). */
  get verifier(): AccessTokenVerifier {
    return this.#verifier;
  }

  /**
   * Maps a TLS client certificate to the agent or workload it was issued to: issued by Mandate's CA,
   * currently valid, with a SPIFFE URI SAN in this trust domain. For mTLS listeners (token endpoint, gateway).
   */
  identityOfCertificate(certificate: X509Certificate): { kind: 'agent' | 'workload'; id: string } | undefined {
    const ca = this.#caCertificate;
    const now = Date.now();
    if (!ca || !certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) return undefined;
    if (Date.parse(certificate.validFrom) > now || now > Date.parse(certificate.validTo)) return undefined;
    const prefix = `spiffe://${this.trustDomain}/`;
    for (const name of (certificate.subjectAltName ?? '').split(', ')) {
      const match = name.startsWith(`URI:${prefix}`) ? /^(agent|workload)\/([a-z]{2,6}_[0-9a-z]{26})$/.exec(name.slice(4 + prefix.length)) : null;
      if (match) return { kind: match[1] as 'agent' | 'workload', id: match[2]! };
    }
    return undefined;
  }

  /** RFC 9728 metadata for a resource served by Mandate. */
  protectedResourceMetadata(resource: string, options: { scopes?: string[]; name?: string; dpopRequired?: boolean } = {}): ProtectedResourceMetadata {
    return protectedResourceMetadata(resource, { issuer: this.issuer, ...options, mtls: this.settings.mtlsPort !== undefined });
  }

  #signer: Promise<{ kid: string; key: KeyLike }> | undefined;

  /**
   * Issues a Mandate access token outside oidc-provider (federation grants, which have no OAuth client):
   * same key, same RFC 9068 shape, same lifetime.
   */
  async mintAccessToken(input: { subject: string; clientId: string; identityId: string | null; scopes: string[]; audience: string; extra?: Record<string, unknown> }): Promise<{ token: string; jti: string; expiresIn: number }> {
    this.#signer ??= this.keys.current().then(async (k) => ({ kid: k.id, key: (await importJWK(k.privateJwk as never, 'RS256')) as KeyLike }));
    const { kid, key } = await this.#signer;
    const jti = randomToken(24);
    const expiresIn = this.settings.accessTokenSeconds;
    const issued = await this.issuedAtMs(input.identityId ? [input.identityId] : []);
    if (issued === null) throw new MandateError('IDENTITY_NOT_ACTIVE', `${input.identityId} is not active`, 400);
    const token = await new SignJWT({ ...input.extra, client_id: input.clientId, ...(input.identityId && { identity_id: input.identityId }), ...(input.scopes.length > 0 && { scope: input.scopes.join(' ') }), [CLAIM_ISSUED_MS]: issued })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
      .setIssuer(this.issuer)
      .setSubject(input.subject)
      .setAudience(input.audience)
      .setIssuedAt()
      .setExpirationTime(`${expiresIn}s`)
      .setJti(jti)
      .sign(key);
    return { token, jti, expiresIn };
  }

  /** True when a token request is a federation grant (an external JWT, no Mandate client). */
  isFederationRequest(form: Record<string, string>): boolean {
    if (form.grant_type === JWT_BEARER) return true;
    return form.grant_type === TOKEN_EXCHANGE && !form.actor_token && (form.subject_token_type === JWT_TOKEN_TYPE || form.subject_token_type === 'urn:ietf:params:oauth:token-type:id_token');
  }

  /** RFC 7523 §2.1 jwt-bearer or RFC 8693 exchange of an external JWT for a workload's Mandate token. */
  async federationToken(form: Record<string, string>): Promise<{ status: 200 | 400; body: Record<string, unknown> }> {
    const assertion = form.grant_type === JWT_BEARER ? form.assertion : form.subject_token;
    if (!assertion) return { status: 400, body: { error: 'invalid_request', error_description: form.grant_type === JWT_BEARER ? 'assertion is required' : 'subject_token is required' } };
    const resource = form.resource ?? form.audience ?? this.issuer;
    try {
      const mapped = await this.federation.resolve(assertion);
      const state = await this.status.state(mapped.identityId);
      if (state !== 'active') throw new MandateError('IDENTITY_NOT_ACTIVE', `workload ${mapped.identityId} is ${state}`, 400);
      let url: URL | undefined;
      try {
        url = new URL(resource);
      } catch {
        url = undefined;
      }
      if (!url || url.hash || (url.protocol !== 'https:' && !(this.#deps.config.mode !== 'production' && url.protocol === 'http:'))) throw new MandateError('FEDERATION_RESOURCE_INVALID', 'one absolute https resource is required', 400);
      const requested = form.scope ? form.scope.split(' ').filter(Boolean) : mapped.scopes;
      const scopes = requested.filter((s) => mapped.scopes.includes(s));
      const minted = await this.mintAccessToken({ subject: mapped.identityId, clientId: `federation:${mapped.issuer}`.slice(0, 200), identityId: mapped.identityId, scopes, audience: resource });
      await this.federation.audit('success', { identityId: mapped.identityId, issuer: mapped.issuer, externalSubject: mapped.externalSubject, scopes, resource, jti: minted.jti });
      return { status: 200, body: { access_token: minted.token, token_type: 'Bearer', expires_in: minted.expiresIn, ...(scopes.length > 0 && { scope: scopes.join(' ') }), ...(form.grant_type === TOKEN_EXCHANGE && { issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' }) } };
    } catch (error) {
      const reason = isMandateError(error) ? error.code : 'FEDERATION_FAILED';
      await this.federation.audit('deny', { reason, message: (error as Error).message.slice(0, 300) }).catch(() => undefined);
      if (isMandateError(error) && error.status < 500) return { status: 400, body: { error: reason === 'FEDERATION_RESOURCE_INVALID' ? 'invalid_target' : 'invalid_grant', error_description: error.message } };
      throw error;
    }
  }

  /** Rotates the signing key when it is older than `keyRotationDays` (one replica wins: rotation re-checks under the lock). */
  async rotateIfDue(now = Date.now()): Promise<boolean> {
    const current = await this.keys.current();
    if (now - Date.parse(current.createdAt) < this.settings.keyRotationDays * 86_400_000) return false;
    await this.keys.rotate(current.id);
    await this.#deps.audit.append({ actor: 'system:oauth', action: 'oauth.keys.rotate', target: current.id, outcome: 'success', details: { reason: 'scheduled' } });
    return true;
  }

  /** Periodic cleanup of expired artifacts, replay entries and revocations. */
  async prune(): Promise<void> {
    await this.rotateIfDue();
    await pruneExpiredPayloads(this.#deps.store);
    await this.replay.prune();
    this.revocations.prune();
    await this.#deps.store.db.deleteFrom('oauth_revocations').where('expires_at', '<', new Date().toISOString()).execute();
  }
}

/** The client id of a Basic Authorization header (for the audit record of a failed request). */
function basicClientId(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^Basic ([A-Za-z0-9+/=]{1,1024})$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const id = decoded.slice(0, Math.max(0, decoded.indexOf(':')));
  try {
    return /^[\w.:-]{1,200}$/.test(decodeURIComponent(id)) ? decodeURIComponent(id) : undefined;
  } catch {
    return undefined;
  }
}
