import { createHash, createHmac } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { constantTimeEqual } from '../core/crypto.ts';
import { TokenError } from './errors.ts';
import { DPOP_ALGORITHMS } from './metadata.ts';

/** How far a proof's `iat` may be from now (RFC 9449 §11.1: a short window bounds what replay caches must hold). */
export const DPOP_IAT_WINDOW_SECONDS = 60;

/**
 * Stateless server nonces (RFC 9449 §8, §9): an HMAC over a time slot, so every replica that shares the
 * key issues and accepts the same nonces without coordinating. A nonce is good for the slot it was made
 * in and the next one.
 */
export class DpopNonces {
  readonly #key: Uint8Array;
  readonly #slotSeconds: number;
  readonly #now: () => number;

  constructor(key: Uint8Array, options: { slotSeconds?: number; now?: () => number } = {}) {
    this.#key = key;
    this.#slotSeconds = options.slotSeconds ?? 300;
    this.#now = options.now ?? (() => Date.now());
  }

  #forSlot(slot: number): string {
    return `${slot.toString(36)}.${createHmac('sha256', this.#key).update(`dpop-nonce:${slot}`).digest('base64url').slice(0, 32)}`;
  }

  current(): string {
    return this.#forSlot(Math.floor(this.#now() / 1000 / this.#slotSeconds));
  }

  valid(nonce: unknown): boolean {
    if (typeof nonce !== 'string' || nonce.length > 64) return false;
    const slot = Math.floor(this.#now() / 1000 / this.#slotSeconds);
    return constantTimeEqual(nonce, this.#forSlot(slot)) || constantTimeEqual(nonce, this.#forSlot(slot - 1));
  }
}

export interface DpopProof {
  jkt: string;
  jti: string;
  iat: number;
}

/** RFC 9449 §4.2: `htu` is compared without query and fragment; scheme and host are case-insensitive. */
export function normalizeHtu(value: string): string | undefined {
  try {
    const url = new URL(value);
    // URL already lower-cases scheme and host and drops default ports; the path stays case-sensitive.
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/**
 * Checks a DPoP proof JWT per RFC 9449 §4.3 (everything except `jti` uniqueness, which the caller records
 * in the shared replay cache). Throws DPOP_PROOF_INVALID or DPOP_NONCE_REQUIRED.
 */
export async function verifyDpopProof(
  proof: string,
  expected: { method: string; url: string; accessToken?: string; nonces?: DpopNonces; requireNonce?: boolean; now?: number },
): Promise<DpopProof> {
  const invalid = (message: string) => new TokenError('DPOP_PROOF_INVALID', message, { dpopNonce: expected.nonces?.current() });
  if (proof.length > 8192 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(proof)) throw invalid('the DPoP proof is not a compact JWS');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalid('the DPoP proof header is unreadable');
  }
  // §4.3 (5)-(7): typ dpop+jwt, an asymmetric algorithm, and a public JWK (no private parts) in the header.
  if (header.typ !== 'dpop+jwt') throw invalid('the DPoP proof typ must be dpop+jwt');
  if (typeof header.alg !== 'string' || !DPOP_ALGORITHMS.includes(header.alg)) throw invalid('the DPoP proof algorithm is not accepted');
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object' || 'd' in jwk || 'k' in jwk || 'p' in jwk) throw invalid('the DPoP proof must carry a public JWK');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS }));
  } catch {
    throw invalid('the DPoP proof signature does not verify');
  }
  const now = Math.floor((expected.now ?? Date.now()) / 1000);
  if (typeof payload.jti !== 'string' || payload.jti.length < 8 || payload.jti.length > 256) throw invalid('the DPoP proof needs a jti');
  if (payload.htm !== expected.method.toUpperCase()) throw invalid('the DPoP proof htm does not match the request method');
  if (typeof payload.htu !== 'string' || normalizeHtu(payload.htu) !== normalizeHtu(expected.url)) throw invalid('the DPoP proof htu does not match the request URL');
  if (typeof payload.iat !== 'number' || Math.abs(payload.iat - now) > DPOP_IAT_WINDOW_SECONDS) throw invalid('the DPoP proof iat is outside the accepted window');
  if (expected.accessToken !== undefined) {
    // §4.3 (11): the proof must be bound to this very access token.
    if (typeof payload.ath !== 'string' || !constantTimeEqual(payload.ath, accessTokenHash(expected.accessToken))) throw invalid('the DPoP proof ath does not match the access token');
  }
  if (expected.requireNonce && expected.nonces) {
    if (!expected.nonces.valid(payload.nonce)) {
      throw new TokenError('DPOP_NONCE_REQUIRED', 'a fresh DPoP nonce is required', { dpopNonce: expected.nonces.current() });
    }
  }
  return { jkt: await calculateJwkThumbprint(jwk, 'sha256'), jti: payload.jti, iat: payload.iat };
}
