import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Context, Hono } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { z } from 'zod';
import { constantTimeEqual } from '../../core/crypto.ts';
import { MandateError } from '../../core/errors.ts';
import { CLAIM_IDENTITY, clientCreateSchema, DELEGATIONS_SCOPE, OAUTH_ROUTES, protectedResourceMetadataUrl, TokenError } from '../../oauth/index.ts';
import { federationIssuerSchema } from '../../oauth/federation.ts';
import { CredentialService } from '../../authn/index.ts';
import { authenticateClient } from '../../oauth/client-auth.ts';
import { isTokenError, wwwAuthenticate } from '../../oauth/index.ts';
import { introspect, revoke } from '../../oauth/introspection.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import { defineRoute, itemsResponse, removedResponse, type Router } from '../define-route.ts';
import type { Services } from '../services.ts';
import { registerInteractionRoutes } from './oauth-interaction.ts';
import { registerMtlsRoutes } from './oauth-mtls.ts';

interface NodeEnv {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/** Raw Node request/response of a Hono context (present when served by @hono/node-server). */
export function nodeOf(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } {
  const env = c.env as NodeEnv | undefined;
  if (!env?.incoming || !env.outgoing) throw new MandateError('OAUTH_UNAVAILABLE', 'the authorization server is only reachable over the Node HTTP server', 503);
  return { incoming: env.incoming, outgoing: env.outgoing };
}

const MAX_FORM_BYTES = 64 * 1024;

/**
 * Hono has already consumed the Node request stream (its body-limit middleware reads it); oidc-provider
 * reads `req` as a stream, so the bytes are offered again as one.
 */
function replayBody(incoming: IncomingMessage, body: Buffer): void {
  const replay = Readable.from([body]);
  Object.defineProperty(incoming, 'readable', { value: true, configurable: true });
  Object.defineProperty(incoming, 'iterator', { value: (options?: { destroyOnReturn?: boolean }) => replay.iterator(options), configurable: true });
}

async function readForm(c: Context): Promise<Record<string, string>> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(c.req.header('content-type') ?? '')) {
    throw new MandateError('REQUEST_CONTENT_TYPE', 'send the body as application/x-www-form-urlencoded', 415);
  }
  const text = await c.req.text();
  if (text.length > MAX_FORM_BYTES) throw new MandateError('REQUEST_TOO_LARGE', 'form too large', 413);
  const params = new URLSearchParams(text);
  const form: Record<string, string> = {};
  for (const [key, value] of params) {
    // RFC 6749 §3.1 / §3.2: parameters must not repeat.
    if (key in form) throw new MandateError('REQUEST_INVALID', `parameter ${key} repeats`, 400);
    form[key] = value;
  }
  return form;
}

function oauthError(c: Context, status: 400 | 401, error: string, description: string): Response {
  if (status === 401) c.header('WWW-Authenticate', 'Basic realm="mandate"');
  c.header('Cache-Control', 'no-store');
  return c.json({ error, error_description: description }, status);
}

/**
 * The authorization server (oidc-provider on the raw Node request), Mandate's own introspection and
 * revocation endpoints, the JWKS with rotated keys, RFC 9728 metadata, and the admin API for clients.
 */
export function registerOAuthRoutes(app: Hono<AppEnv>, admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { oauth } = services;
  const forward = async (c: Context, bodyRead: boolean) => {
    // Hono answers HEAD by running the GET handler and copying its Response without the body, which
    // turns "already sent" into a second answer on a response oidc-provider has written (found by the
    // route fuzzer). The provider's endpoints have no use for HEAD.
    if (c.req.method === 'HEAD') throw new MandateError('METHOD_NOT_ALLOWED', 'the authorization server does not answer HEAD; use GET or POST', 405);
    const { incoming, outgoing } = nodeOf(c);
    if (!bodyRead && c.req.method !== 'GET') {
      // Read the body through Hono (the Node stream may already be wrapped by the adapter) and hand it
      // to oidc-provider as a parsed buffer, so no await before the hand-over can lose it.
      const body = Buffer.from(await c.req.arrayBuffer());
      if (body.length > 56 * 1024) throw new MandateError('REQUEST_TOO_LARGE', 'request body too large', 413);
      replayBody(incoming, body);
    }
    await oauth.handle(incoming, outgoing);
    return RESPONSE_ALREADY_SENT;
  };
  const toProvider = (c: Context) => forward(c, false);

  app.get('/.well-known/openid-configuration', toProvider);
  // RFC 8414 §3: the same metadata at the OAuth well-known location.
  app.get('/.well-known/oauth-authorization-server', async (c) => {
    const { incoming } = nodeOf(c);
    incoming.url = '/.well-known/openid-configuration';
    return toProvider(c);
  });

  // JWKS: the current key and retired keys whose tokens may still be alive (rotation without breakage).
  app.get(OAUTH_ROUTES.jwks, async (c) => {
    const keys = await oauth.keys.published();
    c.header('Cache-Control', 'public, max-age=300');
    return c.json({ keys: keys.map((k) => k.publicJwk) }, 200, { 'content-type': 'application/jwk-set+json' });
  });

  const audiences = () => [oauth.issuer, `${oauth.issuer}${OAUTH_ROUTES.token}`, `${oauth.issuer}${OAUTH_ROUTES.introspection}`, `${oauth.issuer}${OAUTH_ROUTES.revocation}`];
  const caller = async (c: Context, form: Record<string, string>) => {
    const header = c.req.header('authorization');
    const bearer = /^Bearer (\S{1,4096})$/.exec(header ?? '');
    if (bearer && constantTimeEqual(bearer[1]!, services.config.adminToken)) return { admin: true, clientId: null };
    const socket = nodeOf(c).incoming.socket as { getPeerX509Certificate?: () => X509Certificate | undefined };
    const peerCertificate = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    const result = await authenticateClient(services.store, oauth.replay, { authorization: header, form, audiences: audiences(), peerCertificate, caCertificate: await oauth.ca.rootCertificate() });
    return result.ok ? { admin: false, clientId: result.clientId } : undefined;
  };

  /** Whether the agent or workload a client belongs to is active (clients without an identity: true). */
  const identityActive = async (clientId: string): Promise<boolean> => {
    const info = await oauth.clientInfo(clientId);
    if (!info) return false;
    return info.identityId === null || (await oauth.status.state(info.identityId)) === 'active';
  };

  app.post(OAUTH_ROUTES.introspection, async (c) => {
    const form = await readForm(c);
    const who = await caller(c, form);
    if (!who) return oauthError(c, 401, 'invalid_client', 'client authentication failed');
    // RFC 7662 §2.1 / §4: only an authenticated, authorized caller may introspect. A client whose agent or
    // workload is suspended or decommissioned is no longer one (it gets no tokens either): it is answered
    // as a failed client authentication, without saying why.
    if (!who.admin && who.clientId !== null && !(await identityActive(who.clientId))) {
      await services.audit.append({ actor: `client:${who.clientId}`, action: 'token.introspect', target: who.clientId, outcome: 'deny', details: { reason: 'the client\'s identity is not active' } });
      return oauthError(c, 401, 'invalid_client', 'client authentication failed');
    }
    if (typeof form.token !== 'string' || form.token.length === 0) return oauthError(c, 400, 'invalid_request', 'token is required');
    const result = await introspect(oauth.verifier, form.token);
    // §4: a client only learns about its own tokens (admins about any).
    const visible = who.admin || (result.active && result.client_id === who.clientId) || (who.clientId !== null && (await oauth.clientInfo(who.clientId))?.scopes.includes('mandate:introspect'));
    c.header('Cache-Control', 'no-store');
    return c.json(visible ? result : { active: false });
  });

  app.post(OAUTH_ROUTES.revocation, async (c) => {
    const form = await readForm(c);
    const who = await caller(c, form);
    if (!who) return oauthError(c, 401, 'invalid_client', 'client authentication failed');
    // Unlike introspection, a client of a suspended or decommissioned agent may still revoke its own
    // tokens: revocation only ever reduces access (RFC 7009 §2.1 limits it to the client's own tokens),
    // and cleaning up after an incident should not need the identity resumed first.
    if (typeof form.token !== 'string' || form.token.length === 0) return oauthError(c, 400, 'invalid_request', 'token is required');
    await revoke({ store: services.store, revocations: oauth.revocations, audit: services.audit, verifier: oauth.verifier }, form.token, who);
    return c.body(null, 200);
  });

  // RFC 9728 metadata for Mandate's own API as a resource server.
  const apiResource = `${oauth.issuer}/api/v1`;
  app.get(new URL(protectedResourceMetadataUrl(apiResource)).pathname, (c) => c.json(oauth.protectedResourceMetadata(apiResource, { name: 'Mandate API' })));
  app.get('/.well-known/oauth-protected-resource', (c) => c.json(oauth.protectedResourceMetadata(oauth.issuer, { name: 'Mandate' })));

  // Federation grants carry an external JWT and no Mandate client: Mandate answers them itself.
  app.post(OAUTH_ROUTES.token, async (c, next) => {
    if (!/^application\/x-www-form-urlencoded\b/i.test(c.req.header('content-type') ?? '')) return next();
    const raw = await c.req.text();
    const form = Object.fromEntries(new URLSearchParams(raw)) as Record<string, string>;
    if (!oauth.isFederationRequest(form)) {
      const { incoming } = nodeOf(c);
      replayBody(incoming, Buffer.from(raw));
      return forward(c, true);
    }
    const result = await oauth.federationToken(form);
    c.header('Cache-Control', 'no-store');
    return c.json(result.body, result.status);
  });

  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/oauth/federation/issuers',
      tag: 'oauth',
      summary: 'Trust an external issuer (workload identity federation) with claim rules mapping its JWTs to workloads',
      body: federationIssuerSchema,
      response: { status: 201, description: 'The trusted issuer' },
      errors: ['FEDERATION_ISSUER_EXISTS', 'IDENTITY_NOT_FOUND', 'FETCH_URL_INSECURE'],
      permission: 'oauth.federation.create',
    },
    async (c, { body }) => c.json(await oauth.federation.create(body, c.get('actor')), 201),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/oauth/federation/issuers', tag: 'oauth', summary: 'Trusted external issuers', response: itemsResponse, errors: [], permission: 'oauth.federation.list' }, async (c) =>
    c.json({ items: await oauth.federation.list() }),
  );
  defineRoute(
    admin,
    docs,
    { method: 'delete', path: '/api/v1/oauth/federation/issuers/{id}', tag: 'oauth', summary: 'Stop trusting an issuer', response: removedResponse, errors: ['FEDERATION_ISSUER_NOT_FOUND'], permission: 'oauth.federation.delete' },
    async (c, { path }) => {
      await oauth.federation.remove(path('id'), c.get('actor'));
      return c.body(null, 204);
    },
  );

  // Everything else under /oauth/ belongs to oidc-provider (authorize, token, userinfo, register, par).
  for (const path of [OAUTH_ROUTES.authorization, OAUTH_ROUTES.token, OAUTH_ROUTES.userinfo, OAUTH_ROUTES.pushed_authorization_request, OAUTH_ROUTES.registration, `${OAUTH_ROUTES.registration}/*`, `${OAUTH_ROUTES.authorization}/*`]) {
    app.all(path, toProvider);
  }

  // ---- admin API ------------------------------------------------------------------------------------
  for (const kind of ['agent', 'workload'] as const) {
    defineRoute(
      admin,
      docs,
      {
        method: 'post',
        path: `/api/v1/${kind}s/{id}/clients`,
        tag: 'oauth',
        summary: `Create an OAuth client for a ${kind} (client_secret_basic secrets are shown once)`,
        body: clientCreateSchema,
        response: { status: 201, description: '{client_id, client_secret?, identity_id, token_endpoint_auth_method, scopes, tls_client_auth_san_uri?}' },
        errors: [kind === 'agent' ? 'AGENT_NOT_FOUND' : 'WORKLOAD_NOT_FOUND', 'IDENTITY_NOT_ACTIVE', 'CLIENT_SCOPE_RESERVED'],
        permission: `${kind}s.clients.create`,
      },
      async (c, { body, path }) => {
        c.header('Cache-Control', 'no-store');
        return c.json(await oauth.clients.create(kind, path('id'), body, c.get('actor')), 201);
      },
    );
    defineRoute(admin, docs, { method: 'get', path: `/api/v1/${kind}s/{id}/clients`, tag: 'oauth', summary: `List a ${kind}'s OAuth clients`, response: itemsResponse, errors: ['IDENTITY_NOT_FOUND'], permission: `${kind}s.clients.list` }, async (c, { path }) => {
      await services.identity.getIdentity(path('id'), kind);
      return c.json({ items: await oauth.clients.list(path('id')) });
    });
  }
  defineRoute(admin, docs, { method: 'delete', path: '/api/v1/oauth/clients/{id}', tag: 'oauth', summary: 'Disable an OAuth client (no new tokens)', response: { status: 204, description: 'Disabled' }, errors: ['CLIENT_NOT_FOUND'], permission: 'oauth.clients.disable' }, async (c, { path }) => {
    await oauth.clients.disable(path('id'), c.get('actor'));
    return c.body(null, 204);
  });
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/oauth/keys/rotate',
      tag: 'oauth',
      summary: 'Rotate the token signing key (the old one stays published until its tokens expire)',
      response: { status: 200, description: '{kid}', schema: z.object({ kid: z.string() }) },
      errors: [],
      permission: 'oauth.keys.rotate',
    },
    async (c) => {
      const kid = await oauth.keys.rotate();
      await services.audit.append({ actor: c.get('actor'), action: 'oauth.keys.rotate', target: kid, outcome: 'success' });
      return c.json({ kid });
    },
  );

  // ---- human credentials (the login the consent flow needs) and delegations ------------------------
  const credentials = new CredentialService(services.store, services.audit, { masterKey: services.config.masterKey });
  registerInteractionRoutes(app, services, credentials);
  registerMtlsRoutes(app, admin, docs, services);

  const passwordBody = z.object({ password: z.string().min(1).max(1024) }).strict();
  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/humans/{id}/password', tag: 'authn', summary: "Set a human's sign-in password (argon2id)", body: passwordBody, response: { status: 204, description: 'Set' }, errors: ['PASSWORD_WEAK', 'HUMAN_NOT_FOUND'], permission: 'humans.password.set' },
    async (c, { body, path }) => {
      await credentials.setPassword(path('id'), body.password, c.get('actor'));
      return c.body(null, 204);
    },
  );
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/humans/{id}/totp',
      tag: 'authn',
      summary: 'Start TOTP enrolment: returns the secret and otpauth URI once',
      response: { status: 201, description: '{secret, otpauthUri}', schema: z.object({ secret: z.string(), otpauthUri: z.string() }) },
      errors: ['HUMAN_NOT_FOUND'],
      permission: 'humans.totp.enroll',
    },
    async (c, { path }) => {
      c.header('Cache-Control', 'no-store');
      return c.json(await credentials.enrollTotp(path('id'), c.get('actor')), 201);
    },
  );
  const totpBody = z.object({ code: z.string().regex(/^\d{6}$/) }).strict();
  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/humans/{id}/totp/confirm', tag: 'authn', summary: 'Confirm TOTP enrolment with a current code', body: totpBody, response: { status: 204, description: 'Enrolled' }, errors: ['TOTP_INVALID'], permission: 'humans.totp.confirm' },
    async (c, { body, path }) => {
      await credentials.confirmTotp(path('id'), body.code, c.get('actor'));
      return c.body(null, 204);
    },
  );

  const delegationBody = z
    .object({ identityId: z.string().min(1).max(64), scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/)).min(1).max(100), days: z.number().int().min(1).max(365).optional() })
    .strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/humans/{id}/delegations',
      tag: 'oauth',
      summary: 'Record a delegation from a human to an agent (admin; users consent through the authorization code flow)',
      body: delegationBody,
      response: { status: 201, description: 'The delegation' },
      errors: ['HUMAN_NOT_ACTIVE', 'IDENTITY_NOT_ACTIVE'],
      permission: 'humans.delegations.create',
    },
    async (c, { body, path }) => c.json(await oauth.delegations.grant({ humanId: path('id'), identityId: body.identityId, scopes: body.scopes, ...(body.days !== undefined && { days: body.days }) }, c.get('actor')), 201),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/humans/{id}/delegations', tag: 'oauth', summary: "A human's live delegations", response: itemsResponse, errors: [], permission: 'humans.delegations.list' }, async (c, { path }) =>
    c.json({ items: await oauth.delegations.list(path('id')) }),
  );
  defineRoute(admin, docs, { method: 'delete', path: '/api/v1/delegations/{id}', tag: 'oauth', summary: 'Revoke a delegation', response: { status: 200, description: 'The revoked delegation' }, errors: ['DELEGATION_NOT_FOUND'], permission: 'delegations.revoke' }, async (c, { path }) =>
    c.json(await oauth.delegations.revoke(path('id'), c.get('actor'))),
  );

  // Self-service for the human, with their own access token (audience: the issuer). The token must prove
  // that the user is managing their own grants, not that someone holds a token for them: it names a human
  // (`sub`), nobody acts for them (no `act`, RFC 8693 §4.1), its client belongs to no agent or workload (an
  // agent's client holds the user's authorization-code token: with it the agent could list and revoke the
  // user's grants to other agents) and is not disabled, and it carries DELEGATIONS_SCOPE, which the user
  // consented to and identity clients can never obtain.
  const asHuman = async (c: Context): Promise<string> => {
    let token: Awaited<ReturnType<typeof oauth.verifyAccessToken>>;
    try {
      token = await oauth.verifyAccessToken(
        { authorization: c.req.header('authorization'), dpop: c.req.header('dpop'), method: c.req.method, url: `${oauth.issuer}${c.req.path}` },
        { audience: oauth.issuer },
      );
    } catch (error) {
      if (isTokenError(error)) {
        c.header('WWW-Authenticate', wwwAuthenticate(error, { resourceMetadataUrl: protectedResourceMetadataUrl(oauth.issuer) }));
      }
      throw error;
    }
    const holder = await oauth.clients.holder(token.clientId);
    const reason = !token.userId
      ? 'not_a_user'
      : token.actChain.length > 0
        ? 'delegated'
        : token.claims[CLAIM_IDENTITY] !== undefined || token.identityId !== null || holder?.identityId
          ? 'agent_client'
          : holder?.disabled
            ? 'client_disabled'
            : undefined;
    if (reason) {
      await services.audit.append({ actor: `client:${token.clientId.slice(0, 200)}`, action: 'delegation.self_service', target: token.userId, outcome: 'deny', details: { reason, path: c.req.path } });
      throw new MandateError('DELEGATION_SELF_SERVICE_FORBIDDEN', 'only the user themself, through a client of their own, may manage their delegations', 403, { reason });
    }
    if (!token.scopes.includes(DELEGATIONS_SCOPE)) {
      // RFC 6750 §3.1: insufficient_scope, naming the scope that would do.
      const error = new TokenError('TOKEN_SCOPE_INSUFFICIENT', `the access token lacks scope ${DELEGATIONS_SCOPE}`, { details: { missing: [DELEGATIONS_SCOPE] } });
      c.header('WWW-Authenticate', wwwAuthenticate(error, { scope: DELEGATIONS_SCOPE, resourceMetadataUrl: protectedResourceMetadataUrl(oauth.issuer) }));
      throw error;
    }
    return token.userId!;
  };
  // A Mandate resource server that describes the presented token: lets agents check their setup
  // (DPoP, mTLS, delegation chain) and exercises the very checks the gateway runs.
  app.get('/oauth/token-info', async (c) => {
    try {
      const { incoming } = nodeOf(c);
      const socket = incoming.socket as { getPeerX509Certificate?: () => unknown };
      const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
      const token = await oauth.verifyAccessToken(
        { authorization: c.req.header('authorization'), dpop: c.req.header('dpop'), method: c.req.method, url: `${externalOrigin(c)}${c.req.path}`, clientCertificate: cert as never },
        { audience: [oauth.issuer, `${oauth.issuer}/oauth/token-info`] },
      );
      const { claims: _claims, ...view } = token;
      return c.json(view);
    } catch (error) {
      if (isTokenError(error)) {
        c.header('WWW-Authenticate', wwwAuthenticate(error, { scheme: c.req.header('authorization')?.startsWith('DPoP') ? 'DPoP' : 'Bearer', resourceMetadataUrl: protectedResourceMetadataUrl(oauth.issuer) }));
        if (error.dpopNonce) c.header('DPoP-Nonce', error.dpopNonce);
      }
      throw error;
    }
  });
  const externalOrigin = (c: Context) => {
    // The URL the client used: the mTLS listener has its own origin; otherwise the issuer's.
    const url = new URL(c.req.url);
    return url.protocol === 'https:' && oauth.settings.mtlsPort !== undefined && url.port === String(oauth.settings.mtlsPort) ? url.origin : new URL(oauth.issuer).origin;
  };

  app.get('/oauth/delegations', async (c) => c.json({ items: await oauth.delegations.list(await asHuman(c)) }));
  app.delete('/oauth/delegations/:id', async (c) => {
    const humanId = await asHuman(c);
    return c.json(await oauth.delegations.revoke(c.req.param('id'), `human:${humanId}`, humanId));
  });
}
