import { X509Certificate } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { constantTimeEqual } from '../core/crypto.ts';
import type { Store } from '../store/index.ts';
import { storableId } from './adapter.ts';
import { hashClientSecret } from './clients.ts';
import type { ReplayCache } from './state.ts';
import { certificateThumbprint } from './verifier.ts';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export type ClientAuthResult = { ok: true; clientId: string } | { ok: false; reason: string };

/**
 * Client authentication for Mandate's own endpoints (introspection, revocation): client_secret_basic
 * (RFC 6749 §2.3.1, hashed secret, constant-time) and private_key_jwt (RFC 7523 §3, one-time jti).
 */
export async function authenticateClient(
  store: Store,
  replay: ReplayCache,
  input: { authorization: string | undefined; form: Record<string, string>; audiences: string[]; peerCertificate?: X509Certificate | undefined; caCertificate?: X509Certificate | undefined },
): Promise<ClientAuthResult> {
  const basic = /^Basic ([A-Za-z0-9+/=]{1,2048})$/i.exec(input.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) return { ok: false, reason: 'malformed Basic credentials' };
    let clientId: string;
    let secret: string;
    try {
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, '%20'));
      secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, '%20'));
    } catch {
      return { ok: false, reason: 'malformed Basic credentials' };
    }
    if (!storableId(clientId)) return { ok: false, reason: 'invalid client credentials' };
    const row = await store.db.selectFrom('oauth_clients').select(['secret_hash', 'disabled_at']).where('client_id', '=', clientId.slice(0, 200)).executeTakeFirst();
    // Compare even when the client is unknown, so timing does not reveal which client ids exist.
    const ok = constantTimeEqual(row?.secret_hash ?? 'sha256$none', hashClientSecret(secret));
    return ok && row && !row.disabled_at ? { ok: true, clientId } : { ok: false, reason: 'invalid client credentials' };
  }
  if (input.form.client_assertion_type === ASSERTION_TYPE && typeof input.form.client_assertion === 'string') {
    let clientId: string;
    try {
      const claims = decodeJwt(input.form.client_assertion);
      if (typeof claims.iss !== 'string' || claims.iss !== claims.sub) return { ok: false, reason: 'client assertion iss and sub must be the client id' };
      clientId = claims.iss;
    } catch {
      return { ok: false, reason: 'malformed client assertion' };
    }
    if (!storableId(clientId)) return { ok: false, reason: 'invalid client' };
    const row = await store.db.selectFrom('oauth_clients').select(['metadata', 'auth_method', 'disabled_at']).where('client_id', '=', clientId.slice(0, 200)).executeTakeFirst();
    if (!row || row.disabled_at || row.auth_method !== 'private_key_jwt') return { ok: false, reason: 'invalid client' };
    const jwks = (JSON.parse(row.metadata) as { jwks?: JSONWebKeySet }).jwks;
    if (!jwks) return { ok: false, reason: 'client has no keys' };
    try {
      const { payload } = await jwtVerify(input.form.client_assertion, createLocalJWKSet(jwks), {
        issuer: clientId,
        subject: clientId,
        audience: input.audiences,
        algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
        requiredClaims: ['exp', 'jti'],
        maxTokenAge: '10m',
      });
      if (!(await replay.claim(`assertion:${clientId}:${String(payload.jti)}`, new Date(((payload.exp as number) + 60) * 1000)))) return { ok: false, reason: 'client assertion replayed' };
      return { ok: true, clientId };
    } catch {
      return { ok: false, reason: 'client assertion does not verify' };
    }
  }
  if (input.peerCertificate && typeof input.form.client_id === 'string') {
    // RFC 8705 §2: mutual TLS, the client named by client_id and proven by the connection's certificate.
    const clientId = input.form.client_id.slice(0, 200);
    if (!storableId(clientId)) return { ok: false, reason: 'invalid client' };
    const row = await store.db.selectFrom('oauth_clients').select(['metadata', 'auth_method', 'disabled_at']).where('client_id', '=', clientId).executeTakeFirst();
    if (!row || row.disabled_at) return { ok: false, reason: 'invalid client' };
    const metadata = JSON.parse(row.metadata) as { tls_client_auth_san_uri?: string; jwks?: { keys: { x5c?: string[] }[] } };
    const cert = input.peerCertificate;
    const now = Date.now();
    const current = Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
    if (row.auth_method === 'tls_client_auth') {
      const ca = input.caCertificate;
      const uris = (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
      const ok = !!ca && current && cert.checkIssued(ca) && cert.verify(ca.publicKey) && !!metadata.tls_client_auth_san_uri && uris.includes(metadata.tls_client_auth_san_uri);
      return ok ? { ok: true, clientId } : { ok: false, reason: 'client certificate does not authenticate this client' };
    }
    if (row.auth_method === 'self_signed_tls_client_auth') {
      const presented = certificateThumbprint(cert);
      const registered = (metadata.jwks?.keys ?? []).flatMap((k) => k.x5c?.slice(0, 1) ?? []).map((der) => {
        try {
          return certificateThumbprint(new X509Certificate(Buffer.from(der, 'base64')));
        } catch {
          return '';
        }
      });
      return current && registered.some((t) => t && constantTimeEqual(t, presented)) ? { ok: true, clientId } : { ok: false, reason: 'unregistered client certificate' };
    }
  }
  return { ok: false, reason: 'client authentication required' };
}
