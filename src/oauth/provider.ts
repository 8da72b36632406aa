import { createHmac, hkdfSync, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import Provider, { errors as oidcErrors } from 'oidc-provider';
import { constantTimeEqual } from '../core/crypto.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../core/errors.ts';
import { isStoreUnreachable } from '../store/index.ts';
import type { OAuthConfig } from './config.ts';
import { DELEGATIONS_SCOPE, hashClientSecret } from './clients.ts';
import { lookup } from 'node:dns/promises';
import { isPrivateAddress } from './safe-fetch.ts';
import { actChainOf, CLAIM_IDENTITY, CLAIM_ISSUED_MS } from './verifier.ts';

/** Paths the authorization server owns under the issuer. */
export const OAUTH_ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  jwks: '/oauth/jwks',
  userinfo: '/oauth/me',
  registration: '/oauth/register',
  pushed_authorization_request: '/oauth/par',
  end_session: '/oauth/logout',
  introspection: '/oauth/introspect',
  revocation: '/oauth/revoke',
  interaction: '/oauth/interaction',
} as const;

export interface ClientInfo {
  identityId: string | null;
  kind: 'agent' | 'workload' | null;
  scopes: string[];
}

export interface ProviderDependencies {
  issuer: string;
  masterKey: Uint8Array;
  config: OAuthConfig;
  signingJwk: Record<string, unknown>;
  adapter: (model: string) => unknown;
  /** The client's identity and allowed scopes (undefined for clients without an identity). */
  clientInfo(clientId: string): Promise<ClientInfo | undefined>;
  findHuman(id: string): Promise<{ id: string; email: string; displayName: string } | undefined>;
  /** The `iat_ms` of a new token naming these agents/workloads (see OAuthService.issuedAtMs). */
  issuedAtMs(identityIds: readonly string[]): Promise<number | null>;
  /** The trusted CA for tls_client_auth (PEM), when the internal CA is set up. */
  caCertificate(): X509Certificate | undefined;
  /** Browser origins allowed cross-origin access (MANDATE_CORS_ORIGINS); empty: no CORS at all. */
  corsOrigins: ReadonlySet<string>;
  /** Origin of the mTLS listener, when there is one. */
  mtlsOrigin?: string | undefined;
  /** Extra token-endpoint grants (token exchange, jwt-bearer). */
  grants: { name: string; params: string[]; handler: (provider: Provider, ctx: any) => Promise<void> }[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  onEvent(kind: 'grant.success' | 'grant.error' | 'server_error', ctx: any, error?: Error): void; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Derives purpose-specific secrets from the master key (HKDF-SHA256), so one secret need not serve two uses. */
export function deriveKey(masterKey: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `mandate:${purpose}`, 32));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ctx = any;

/** The TLS client certificate of the connection, if the request came through the mTLS listener. */
export function peerCertificate(ctx: Ctx): X509Certificate | undefined {
  const socket = ctx.req?.socket as TLSSocket | undefined;
  if (!socket || typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.raw) return undefined;
  return new X509Certificate(peer.raw);
}

export function resourceIsValid(resource: string, devMode: boolean): boolean {
  try {
    const url = new URL(resource);
    // RFC 8707 §2: an absolute URI without a fragment.
    if (url.hash || url.username || url.password) return false;
    return url.protocol === 'https:' || (devMode && url.protocol === 'http:');
  } catch {
    return false;
  }
}

/**
 * oidc-provider configured as Mandate's authorization server: client credentials, authorization code +
 * PKCE (S256 only), JWT access tokens (RFC 9068) bound to one resource (RFC 8707), DPoP (RFC 9449),
 * mTLS client auth and certificate-bound tokens (RFC 8705), private_key_jwt (RFC 7523), dynamic
 * registration (RFC 7591, off by default) and Client ID Metadata Documents.
 */
export function buildProvider(deps: ProviderDependencies, devMode: boolean): Provider {
  const { config, issuer } = deps;
  const ttl = config.accessTokenSeconds;
  const cookieKeys = [deriveKey(deps.masterKey, 'oauth-cookies').toString('base64url')];
  const configuration: Record<string, unknown> = {
    adapter: deps.adapter,
    jwks: { keys: [deps.signingJwk] },
    clients: [],
    routes: {
      authorization: OAUTH_ROUTES.authorization,
      token: OAUTH_ROUTES.token,
      jwks: OAUTH_ROUTES.jwks,
      userinfo: OAUTH_ROUTES.userinfo,
      registration: OAUTH_ROUTES.registration,
      pushed_authorization_request: OAUTH_ROUTES.pushed_authorization_request,
      end_session: OAUTH_ROUTES.end_session,
    },
    responseTypes: ['code'],
    // Called for requests that name a client (token, userinfo…): an origin not configured is refused.
    clientBasedCORS: (_ctx: Ctx, origin: string) => deps.corsOrigins.has(origin),
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    findAccount: async (_ctx: Ctx, sub: string) => {
      const human = await deps.findHuman(sub);
      if (!human) return undefined;
      return { accountId: human.id, claims: async () => ({ sub: human.id, email: human.email, name: human.displayName }) };
    },
    clientAuthMethods: ['client_secret_basic', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
      idTokenSigningAlgValues: ['RS256'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      dPoPSigningAlgValues: ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'],
    },
    clientDefaults: { id_token_signed_response_alg: 'RS256', grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic' },
    pkce: { required: () => true },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      AuthorizationCode: 60,
      IdToken: ttl,
      RefreshToken: 8 * 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: config.delegationDays * 86_400,
    },
    cookies: {
      keys: cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax', secure: issuer.startsWith('https://') },
      short: { signed: true, httpOnly: true, sameSite: 'lax', secure: issuer.startsWith('https://') },
    },
    interactions: { url: (_ctx: Ctx, interaction: { uid: string }) => `${OAUTH_ROUTES.interaction}/${interaction.uid}` },
    extraTokenClaims: async (ctx: Ctx, token: Ctx) => {
      const info = token.clientId ? await deps.clientInfo(token.clientId) : undefined;
      const extra: Record<string, unknown> = {};
      if (info?.identityId) extra[CLAIM_IDENTITY] = info.identityId;
      // Token exchange stashes the act chain on the context (RFC 8693 §4.1).
      if (ctx?.mandateAct) extra.act = ctx.mandateAct;
      // Every agent and workload the token names: it must not look older than any one's last suspension.
      const issued = await deps.issuedAtMs([...(info?.identityId ? [info.identityId] : []), ...actChainOf(ctx?.mandateAct).filter((id) => !id.startsWith('hum_'))]);
      // Suspended since its client was checked: no token (see OAuthService.issuedAtMs).
      if (issued === null) throw new oidcErrors.InvalidGrant('the agent or workload is not active');
      extra[CLAIM_ISSUED_MS] = issued;
      return extra;
    },
    formats: {
      customizers: {
        jwt: async (_ctx: Ctx, token: Ctx, jwt: { payload: Record<string, unknown> }) => {
          // RFC 9068 §2.2: for client credentials `sub` names the client; Mandate names the agent itself.
          if (token.kind === 'ClientCredentials' && typeof jwt.payload[CLAIM_IDENTITY] === 'string') jwt.payload.sub = jwt.payload[CLAIM_IDENTITY];
          if (token.mandateSub) jwt.payload.sub = token.mandateSub;
        },
      },
    },
    discovery: {
      introspection_endpoint: `${issuer}${OAUTH_ROUTES.introspection}`,
      revocation_endpoint: `${issuer}${OAUTH_ROUTES.revocation}`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'],
      service_documentation: `${issuer}/api/v1/openapi.json`,
      ...(deps.mtlsOrigin && {
        // RFC 8705 §5: where clients that authenticate with certificates reach the token endpoint.
        mtls_endpoint_aliases: {
          token_endpoint: `${deps.mtlsOrigin}${OAUTH_ROUTES.token}`,
          introspection_endpoint: `${deps.mtlsOrigin}${OAUTH_ROUTES.introspection}`,
          revocation_endpoint: `${deps.mtlsOrigin}${OAUTH_ROUTES.revocation}`,
        },
      }),
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => issuer,
        useGrantedResource: () => true,
        getResourceServerInfo: async (ctx: Ctx, resource: string, client: Ctx) => {
          if (!resourceIsValid(resource, devMode)) throw new oidcErrors.InvalidTarget('the resource must be an absolute https URL without a fragment');
          const info = await deps.clientInfo(client.clientId);
          // At the token endpoint the code or refresh token carries what was asked at authorization (the
          // request has no `scope`); oidc-provider then cuts it to the consented grant.
          const source = ctx.oidc.entities?.AuthorizationCode ?? ctx.oidc.entities?.RefreshToken;
          const requested = String(ctx.oidc.params?.scope ?? source?.scope ?? '').split(' ').filter(Boolean);
          // Identity clients may only ever get the scopes an admin gave them; others only what is asked
          // (and, in the code flow, consented to). The self-service scope is never an agent's or workload's,
          // even if a client stored before it was reserved lists it.
          const allowed = info?.identityId ? info.scopes.filter((s) => s !== DELEGATIONS_SCOPE) : requested;
          return {
            scope: allowed.join(' '),
            audience: resource,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
      dPoP: {
        enabled: true,
        nonceSecret: deriveKey(deps.masterKey, 'dpop-nonce-as'),
        requireNonce: () => config.requireDpopNonce,
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: (ctx: Ctx) => peerCertificate(ctx),
        certificateAuthorized: (ctx: Ctx) => {
          const cert = peerCertificate(ctx);
          const ca = deps.caCertificate();
          if (!cert || !ca) return false;
          const now = Date.now();
          return cert.checkIssued(ca) && cert.verify(ca.publicKey) && Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
        },
        certificateSubjectMatches: (ctx: Ctx, property: string, expected: string) => {
          const cert = peerCertificate(ctx);
          if (!cert || property !== 'tls_client_auth_san_uri') return false;
          const uris = (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
          return uris.includes(expected);
        },
      },
      registration: {
        enabled: config.dynamicRegistration !== 'off',
        ...(config.dynamicRegistration === 'token' && { initialAccessToken: config.initialAccessToken }),
        idFactory: () => `cli_dyn_${createHmac('sha256', deriveKey(deps.masterKey, 'client-id')).update(String(Math.random()) + Date.now()).digest('hex').slice(0, 26)}`,
      },
      clientIdMetadataDocument: {
        enabled: config.clientIdMetadataDocuments,
        // An experimental draft in oidc-provider: acknowledged explicitly so an upgrade that changes it fails loudly.
        ack: 'draft-02',
        // The client id is a URL Mandate will fetch: never one that resolves to a private address (SSRF).
        allowFetch: async (_ctx: Ctx, clientId: string) => config.federationAllowPrivateNetworks || (await resolvesPublic(clientId)),
      },
    },
    renderError: async (ctx: Ctx, out: { error: string; error_description?: string }) => {
      ctx.type = 'html';
      const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
      ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title></head><body><main><h1>Something went wrong</h1><p>${esc(out.error)}: ${esc(out.error_description ?? '')}</p></main></body></html>`;
    },
  };
  const provider = new Provider(issuer, configuration);
  // Client secrets are stored hashed: compare the hash of what was presented (constant time).
  provider.Client.prototype.compareClientSecret = function compareHashed(this: { clientSecret?: string }, actual: string) {
    return typeof this.clientSecret === 'string' && typeof actual === 'string' && constantTimeEqual(this.clientSecret, hashClientSecret(actual));
  };
  // oidc-provider answers every preflight, and its metadata, with `Access-Control-Allow-Origin` echoing
  // any `Origin` (its client-based check runs only once a request names a client, which a preflight never
  // does). Only configured origins keep CORS headers; for others the browser sees no grant at all.
  provider.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      if (!deps.corsOrigins.has(ctx.get('Origin'))) {
        for (const name of Object.keys(ctx.response.headers as Record<string, unknown>)) if (name.toLowerCase().startsWith('access-control-')) ctx.remove(name);
      }
    }
  });
  for (const grant of deps.grants) provider.registerGrantType(grant.name, (ctx) => grant.handler(provider, ctx), grant.params, ['resource']);
  provider.on('grant.success', (ctx) => deps.onEvent('grant.success', ctx));
  provider.on('grant.error', (ctx, error) => deps.onEvent('grant.error', ctx, error));
  provider.on('server_error', (ctx, error) => {
    // oidc-provider renders every unexpected failure as a 500 server_error. The store being away is
    // not a bug and passes by itself: a 503 the client may retry (RFC 6749's temporarily_unavailable).
    // The event fires after the error is rendered and before the answer is sent, so it can be amended.
    if (isStoreUnreachable(error)) {
      ctx.status = 503;
      ctx.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      if (typeof ctx.body === 'object' && ctx.body !== null) ctx.body = { error: 'temporarily_unavailable', error_description: 'the database is unreachable; retry shortly' };
    }
    deps.onEvent('server_error', ctx, error);
  });
  return provider;
}

async function resolvesPublic(url: string): Promise<boolean> {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    const addresses = await lookup(host, { all: true });
    return addresses.length > 0 && addresses.every((a) => !isPrivateAddress(a.address));
  } catch {
    return false;
  }
}
