import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { MandateError } from '../../core/errors.ts';
import { isTokenError, protectedResourceMetadataUrl, wwwAuthenticate } from '../../oauth/index.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import { defineRoute, type Router } from '../define-route.ts';
import type { Services } from '../services.ts';
import { readBody } from '../validation.ts';
import { answerClientErrors } from '../client-error.ts';
import { capConnections } from '../connection-cap.ts';
import { nodeOf } from './oauth.ts';

const csrBody = z.object({ csr: z.string().min(100).max(20_000), ttlSeconds: z.number().int().min(60).max(86_400).optional() }).strict();

/**
 * Internal CA endpoints (certificates from CSRs for authenticated identities) and the optional mTLS
 * listener (MANDATE_MTLS_PORT): the same app over TLS that asks for a client certificate, so the token
 * endpoint can authenticate clients by certificate and bind tokens to it (RFC 8705).
 */
export function registerMtlsRoutes(app: Hono<AppEnv>, admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { oauth } = services;

  app.get('/oauth/ca', async (c) => c.body(await oauth.ca.rootPem(), 200, { 'content-type': 'application/x-pem-file' }));

  for (const kind of ['agent', 'workload'] as const) {
    defineRoute(
      admin,
      docs,
      {
        method: 'post',
        path: `/api/v1/${kind}s/{id}/certificates`,
        tag: 'pki',
        summary: `Issue a short-lived client certificate (SPIFFE URI SAN) to a ${kind} from its CSR`,
        body: csrBody,
        response: { status: 201, description: '{certificate, chain, serial, spiffeId, notBefore, notAfter, thumbprint}' },
        errors: ['CSR_INVALID', 'CSR_KEY_WEAK', 'IDENTITY_NOT_FOUND', 'IDENTITY_NOT_ACTIVE'],
        permission: `${kind}s.certificates.issue`,
      },
      async (c, { body, path }) => {
        const identity = await services.identity.getIdentity(path('id'), kind);
        if (identity.status !== 'active') throw new MandateError('IDENTITY_NOT_ACTIVE', `${kind} ${identity.id} is ${identity.status}`, 409);
        return c.json(await oauth.ca.issue({ id: identity.id, kind }, body.csr, c.get('actor'), body.ttlSeconds), 201);
      },
    );
  }

  // Self-service: an agent renews its own certificate with its access token (audience: the issuer).
  app.post('/oauth/certificates', async (c: Context) => {
    let identityId: string | null;
    try {
      const token = await oauth.verifyAccessToken(
        { authorization: c.req.header('authorization'), dpop: c.req.header('dpop'), method: 'POST', url: `${oauth.issuer}/oauth/certificates`, clientCertificate: peer(c) },
        { audience: oauth.issuer },
      );
      identityId = token.actChain.length === 0 ? token.identityId : null;
    } catch (error) {
      if (isTokenError(error)) c.header('WWW-Authenticate', wwwAuthenticate(error, { resourceMetadataUrl: protectedResourceMetadataUrl(oauth.issuer) }));
      throw error;
    }
    if (!identityId) throw new MandateError('AUTH_FORBIDDEN', 'only an agent or workload may request its own certificate', 403);
    const body = await readBody(c, csrBody);
    const identity = await services.identity.getIdentity(identityId);
    // The configured lifetime is a ceiling here: a 5-minute token must not buy a day-long credential that
    // no revocation list covers (only an admin may issue longer ones).
    const seconds = Math.min(body.ttlSeconds ?? oauth.settings.certificateSeconds, oauth.settings.certificateSeconds);
    return c.json(await oauth.ca.issue({ id: identity.id, kind: identity.kind }, body.csr, `${identity.kind}:${identity.id}`, seconds), 201);
  });

  const port = oauth.settings.mtlsPort;
  if (port === undefined) return;
  let server: Server | undefined;
  const listening = (async () => {
    const host = new URL(oauth.issuer).hostname;
    const names = [...new Set([host, 'localhost', '127.0.0.1', services.config.host].filter((h) => h && h !== '0.0.0.0'))];
    const tls = await oauth.ca.serverCertificate(names);
    server = createServer(
      // Ask for a certificate but let the app decide (not every path needs one): RFC 8705 §2 checks happen in oidc-provider and the verifier.
      {
        key: tls.key,
        cert: tls.cert,
        ca: [tls.ca],
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        // As on the main listener (server.ts): a request must arrive within MANDATE_REQUEST_TIMEOUT_SECONDS.
        requestTimeout: services.config.requestTimeoutSeconds * 1000,
        headersTimeout: Math.min(60_000, services.config.requestTimeoutSeconds * 1000),
      },
      getRequestListener((request, env) => app.fetch(request, env)),
    );
    capConnections(server, { max: services.config.maxConnections, perClient: services.config.maxConnectionsPerClient }, 'mtls', () => services.logger);
    answerClientErrors(server, 'mtls', () => services.logger);
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, services.config.host, () => resolve());
    });
    const actual = (server.address() as AddressInfo).port;
    oauth.setMtlsOrigin(`https://${host}:${actual}`);
    services.logger.info({ port: actual }, 'mTLS listener ready');
  })();
  listening.catch((error) => services.logger.error({ err: error }, 'mTLS listener failed to start'));
  oauth.mtlsReady = listening;
  services.onClose(async () => {
    await listening.catch(() => undefined);
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
}

function peer(c: Context) {
  try {
    const socket = nodeOf(c).incoming.socket as { getPeerX509Certificate?: () => unknown };
    return typeof socket.getPeerX509Certificate === 'function' ? (socket.getPeerX509Certificate() as never) : undefined;
  } catch {
    return undefined;
  }
}
