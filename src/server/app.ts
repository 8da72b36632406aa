import type { ErrorCode } from '../core/error-catalog.ts';
import type { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { sql } from 'kysely';
import { constantTimeEqual } from '../core/crypto.ts';
import { MandateError } from '../core/errors.ts';
import type { AppEnv } from './app-env.ts';
import { bearerAuth, type BearerAuthenticator } from './bearer-auth.ts';
import type { Router } from './define-route.ts';
import { OpenApiRegistry } from './openapi.ts';
import { problem, toMandateError } from './problem.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerGatewayRoutes } from './routes/gateway.ts';
import { registerGovernanceRoutes } from './routes/governance.ts';
import { registerMcpRoutes } from './routes/mcp.ts';
import { registerIdentityRoutes } from './routes/identity.ts';
import { registerOAuthRoutes } from './routes/oauth.ts';
import { registerAuthzenRoutes } from './routes/authzen.ts';
import { registerPolicyRoutes } from './routes/policies.ts';
import { isScimPath, registerScimRoutes, scimErrorResponse } from './routes/scim.ts';
import { cameThroughAdminListener, isAdminApiPath, isProbePath } from './admin-listener.ts';
import type { Services } from './services.ts';

export type { BearerAuthenticator };

/** What the admin API's bearer authentication answers before any route runs. */
const ADMIN_AUTH_ERRORS: readonly ErrorCode[] = ['AUTH_REQUIRED'];

export interface MandateApp {
  app: Hono<AppEnv>;
  docs: OpenApiRegistry;
  /** Further ways to authenticate admin API callers (added by domains such as OAuth). */
  adminAuthenticators: BearerAuthenticator[];
  /** Who may query the AuthZEN PDP: the admin token, plus what domains add (OAuth clients allowed to). */
  pdpAuthenticators: BearerAuthenticator[];
}

export function createApp(services: Services): MandateApp {
  const app = new Hono<AppEnv>();
  const docs = new OpenApiRegistry();
  const adminAuthenticators: BearerAuthenticator[] = [(token) => (constantTimeEqual(token, services.config.adminToken) ? 'admin' : undefined)];
  const pdpAuthenticators: BearerAuthenticator[] = [adminAuthenticators[0]!];

  app.onError((error, c) => {
    const coded = toMandateError(error);
    // The store being away is logged by the store itself; each refused request is only a warning.
    if (coded.code === 'STORE_UNAVAILABLE') services.logger.warn({ err: error, path: c.req.path }, 'request refused: the store is unreachable');
    else if (coded.status >= 500) services.logger.error({ err: error, path: c.req.path }, 'request failed');
    // A client error that was not raised as a MandateError (a schema parsed outside validation.ts) is
    // answered as one, and logged so the route can be fixed.
    else if (!(error instanceof MandateError)) services.logger.warn({ err: error, path: c.req.path, code: coded.code }, 'request refused by an uncoded error');
    return problem(c, coded);
  });
  app.notFound((c) => problem(c, new MandateError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`, 404)));
  if (services.config.adminPort !== undefined) {
    // The admin API on its own listener (MANDATE_ADMIN_PORT), and nothing else there but the probes.
    // Decided on the path hono routes on, before anything else runs: no other listener serves `/api/v1`.
    app.use('*', async (c, next) => {
      const onAdminListener = cameThroughAdminListener(c.env);
      const adminPath = isAdminApiPath(c.req.path);
      if (onAdminListener ? !adminPath && !isProbePath(c.req.path) : adminPath) {
        return problem(c, new MandateError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path} on this listener`, 404));
      }
      return next();
    });
  }
  const limitBody = bodyLimit({
    maxSize: services.config.maxBodyBytes,
    onError: (c) => {
      const error = new MandateError('REQUEST_TOO_LARGE', `request body exceeds ${services.config.maxBodyBytes} bytes`, 413);
      // The rest of the body is never read: close the connection (RFC 9110 §15.5.14), or a keep-alive
      // client's next request on it would wait behind the unread bytes.
      c.header('connection', 'close');
      // SCIM clients expect SCIM error JSON (RFC 7644 §3.12), not problem+json.
      return isScimPath(c.req.path) ? scimErrorResponse(c, error) : problem(c, error);
    },
  });
  app.use('*', async (c, next) => {
    // The usual case is decided from the Node request's own headers. hono's bodyLimit looks at
    // `request.body`, which turns @hono/node-server's lightweight request into a full WHATWG Request
    // (headers copied, body re-wrapped as a web stream, a finalizer registered) on every request: the
    // largest avoidable cost on the gateway's hot path. Without Transfer-Encoding, a request body is
    // exactly Content-Length bytes, or none (RFC 9112 §6.3), and Node's parser holds the client to it.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (incoming !== undefined && incoming.headers['transfer-encoding'] === undefined) {
      const length = Number(incoming.headers['content-length'] ?? 0);
      if (length > services.config.maxBodyBytes) return limitBody(c, next);
      return next();
    }
    // Chunked bodies (and requests that do not come from a Node server) are counted as they are read.
    return limitBody(c, next);
  });

  // Path parameters reach database queries: a NUL (which PostgreSQL text cannot hold) or a malformed
  // escape is a client error on every route.
  app.use('*', async (c, next) => {
    let path: string;
    try {
      path = decodeURIComponent(c.req.path);
    } catch {
      throw new MandateError('REQUEST_PATH_INVALID', 'the path has a malformed percent-escape', 400);
    }
    if (path.includes('\u0000')) throw new MandateError('REQUEST_PATH_INVALID', 'the path must not contain the NUL character', 400);
    await next();
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await sql`select 1`.execute(services.store.db);
      return c.json({ status: 'ready' });
    } catch {
      return problem(c, new MandateError('STORE_UNAVAILABLE', 'the database is unreachable', 503));
    }
  });
  // On the admin listener (MANDATE_ADMIN_PORT) the API is where the document was fetched from, not at the public URL.
  app.get('/api/v1/openapi.json', (c) => c.json(docs.document(cameThroughAdminListener(c.env) ? new URL(c.req.url).origin : services.config.publicUrl)));

  const api = new Hono<AppEnv>();
  api.use(
    '*',
    bearerAuth({
      authenticators: adminAuthenticators,
      schemeCaseInsensitive: false,
      refuse: (c) => {
        c.header('WWW-Authenticate', 'Bearer realm="mandate"');
        return new MandateError('AUTH_REQUIRED', 'a valid bearer token is required', 401);
      },
    }),
  );
  const admin: Router = { hono: api, base: '/api/v1', errors: ADMIN_AUTH_ERRORS };
  registerIdentityRoutes(admin, docs, services);
  registerAuditRoutes(admin, docs, services);
  registerGovernanceRoutes(admin, docs, services);
  registerOAuthRoutes(app, admin, docs, services);
  registerPolicyRoutes(admin, docs, services);
  registerGatewayRoutes(admin, docs, services);
  registerAuthzenRoutes(app, docs, services, pdpAuthenticators);
  app.route('/api/v1', api);
  // The MCP gateway sits outside /api/v1: agents authenticate with OAuth access tokens, never the admin token.
  registerMcpRoutes(app, docs, services);
  // SCIM sits outside /api/v1 with its own token (MANDATE_SCIM_TOKEN) and SCIM error bodies.
  registerScimRoutes(app, docs, services);

  return { app, docs, adminAuthenticators, pdpAuthenticators };
}
