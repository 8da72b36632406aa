import type { AuditLog } from '../audit/index.ts';
import type { Store } from '../store/index.ts';
import { TokenError } from './errors.ts';
import type { RevocationList } from './state.ts';
import type { AccessTokenVerifier } from './verifier.ts';

/**
 * RFC 7662 introspection of Mandate's JWT access tokens: `active` only while the signature, expiry,
 * revocation list and the status of every identity in the chain all hold. A suspended agent's tokens turn
 * inactive the moment the suspension commits.
 */
export async function introspect(verifier: AccessTokenVerifier, token: string): Promise<Record<string, unknown>> {
  try {
    const claims = await verifier.inspect(token);
    return {
      active: true,
      token_type: claims.cnf && typeof claims.cnf === 'object' && 'jkt' in claims.cnf ? 'DPoP' : 'Bearer',
      ...pick(claims, ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'cnf', 'act', 'identity_id']),
    };
  } catch (error) {
    if (error instanceof TokenError && error.code === 'VERIFIER_UNAVAILABLE') throw error;
    // §2.2: anything else is simply "not active", with no reason given to the caller.
    return { active: false };
  }
}

/**
 * RFC 7009 revocation: a client may revoke its own tokens (admins any). Invalid or unknown tokens get the
 * same 200 (§2.2). The token id goes on the revocation list, shared by every replica.
 */
export async function revoke(
  deps: { store: Store; revocations: RevocationList; audit: AuditLog; verifier: AccessTokenVerifier },
  token: string,
  caller: { clientId: string | null; admin: boolean },
): Promise<void> {
  let claims: Record<string, unknown>;
  try {
    // Only tokens Mandate signed (expired ones need no revoking: they fail anyway).
    claims = await deps.verifier.inspect(token, { signatureOnly: true });
  } catch {
    return;
  }
  if (typeof claims.jti !== 'string' || typeof claims.exp !== 'number') return;
  const owner = typeof claims.client_id === 'string' ? claims.client_id : null;
  const actor = caller.admin ? 'admin' : `client:${caller.clientId}`;
  if (!caller.admin && owner !== caller.clientId) {
    await deps.audit.append({ actor, action: 'token.revoke', target: claims.jti, outcome: 'deny', details: { reason: 'not the token owner' } });
    return;
  }
  await deps.store.transaction(async (tx) => {
    await deps.revocations.revokeIn(tx, { jti: claims.jti as string, clientId: owner, reason: 'revoked', expiresAt: new Date((claims.exp as number) * 1000) });
    await deps.audit.appendIn(tx, { actor, action: 'token.revoke', target: claims.jti as string, outcome: 'success', details: { clientId: owner } });
  });
}

function pick(source: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => source[k] !== undefined).map((k) => [k, source[k]]));
}
