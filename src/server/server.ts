import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../core/config.ts';
import type { Logger } from 'pino';
import { createApp, type MandateApp } from './app.ts';
import { markAdminRequest } from './admin-listener.ts';
import { answerClientErrors } from './client-error.ts';
import { capConnections } from './connection-cap.ts';
import { mcpListener } from './mcp-listener.ts';
import { createServices, type Services } from './services.ts';

export interface RunningServer {
  url: string;
  /** Where the admin API is: the main listener's URL, or the admin listener's (`MANDATE_ADMIN_PORT`). */
  adminUrl: string;
  services: Services;
  mandate: MandateApp;
  close(): Promise<void>;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP listener with Mandate's request timeouts and connection caps. */
function httpListener(config: Config, name: string, logger: () => Logger | undefined, listener: Listener): Server {
  const requestTimeout = config.requestTimeoutSeconds * 1000;
  const server = createServer(
    {
      // Receiving a request (headers and body) may take this long; Node checks at this interval. The
      // headers' own limit may not exceed it.
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeout / 4))),
    },
    listener,
  );
  capConnections(server, { max: config.maxConnections, perClient: config.maxConnectionsPerClient }, name, logger);
  answerClientErrors(server, name, logger);
  return server;
}

/** Listens; resolves with the URL a local client reaches it at. */
async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const name = host.includes(':') ? `[${host}]` : host;
  return `http://${name === '0.0.0.0' ? '127.0.0.1' : name === '[::]' ? '[::1]' : name}:${actual}`;
}

function closeListener(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections would hold close() open.
    server.closeAllConnections();
  });
}

/** Builds the services, mounts every route and listens. `port: 0` picks a free port (tests). */
export async function startServer(config: Config, services?: Services): Promise<RunningServer> {
  // Listen first so that a server on port 0 knows its URL (the OAuth issuer) before routes are built.
  // `env` carries the raw Node request/response ({incoming, outgoing}): oidc-provider is mounted on them.
  // `/mcp/{server}` is served by Node's listener directly (mcp-listener.ts); everything else by hono.
  const routing: { handler?: (request: Request, env: unknown) => Response | Promise<Response>; mcp?: (req: IncomingMessage, res: ServerResponse) => boolean; logger?: Logger } = {};
  const honoListener = getRequestListener((request: Request, env: unknown) => (routing.handler ? routing.handler(request, env) : new Response('starting', { status: 503 })), { hostname: config.host });
  const server = httpListener(config, 'main', () => routing.logger, (req, res) => {
    if (routing.mcp?.(req, res)) return;
    void honoListener(req, res).catch((error: unknown) => failedRequest(routing.logger, res, error));
  });
  const url = await listen(server, config.port, config.host);
  // The admin API on a listener of its own (app.ts keeps each listener to its own paths).
  const admin =
    config.adminPort === undefined
      ? undefined
      : httpListener(config, 'admin', () => routing.logger, (req, res) => {
          markAdminRequest(req);
          void honoListener(req, res).catch((error: unknown) => failedRequest(routing.logger, res, error));
        });
  let adminUrl = url;
  try {
    if (admin) adminUrl = await listen(admin, config.adminPort!, config.adminHost);
  } catch (error) {
    await closeListener(server);
    throw error;
  }
  if (!config.publicUrlExplicit) config.publicUrl = `http://localhost:${(server.address() as AddressInfo).port}`;
  let ready: Services;
  let mandate: MandateApp;
  try {
    ready = services ?? (await createServices(config));
    mandate = createApp(ready);
    await ready.start();
  } catch (error) {
    await closeListener(server);
    if (admin) await closeListener(admin);
    throw error;
  }
  routing.logger = ready.logger;
  routing.handler = (request, env) => mandate.app.fetch(request, env);
  routing.mcp = mcpListener({ proxy: ready.gateway.proxy, maxBodyBytes: config.maxBodyBytes, logger: ready.logger });
  return {
    url,
    adminUrl,
    services: ready,
    mandate,
    async close() {
      await Promise.all([closeListener(server), ...(admin ? [closeListener(admin)] : [])]);
      await ready.close();
    },
  };
}

/** hono's listener answers errors itself; should it still reject, the request is logged and its connection ended. */
function failedRequest(logger: Logger | undefined, res: ServerResponse, error: unknown): void {
  logger?.error({ err: error }, 'request failed outside the application');
  res.destroy();
}
