import { getRequestListener } from '@hono/node-server';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../core/config.ts';
import type { Logger } from 'pino';
import { createApp, type MandateApp } from './app.ts';
import { capConnections } from './connection-cap.ts';
import { mcpListener } from './mcp-listener.ts';
import { createServices, type Services } from './services.ts';

export interface RunningServer {
  url: string;
  services: Services;
  mandate: MandateApp;
  close(): Promise<void>;
}

/** Builds the services, mounts every route and listens. `port: 0` picks a free port (tests). */
export async function startServer(config: Config, services?: Services): Promise<RunningServer> {
  // Listen first so that a server on port 0 knows its URL (the OAuth issuer) before routes are built.
  // `env` carries the raw Node request/response ({incoming, outgoing}): oidc-provider is mounted on them.
  // `/mcp/{server}` is served by Node's listener directly (mcp-listener.ts); everything else by hono.
  const routing: { handler?: (request: Request, env: unknown) => Response | Promise<Response>; mcp?: (req: IncomingMessage, res: ServerResponse) => boolean; logger?: Logger } = {};
  const honoListener = getRequestListener((request: Request, env: unknown) => (routing.handler ? routing.handler(request, env) : new Response('starting', { status: 503 })), { hostname: config.host });
  const requestTimeout = config.requestTimeoutSeconds * 1000;
  const server = createServer(
    {
      // Receiving a request (headers and body) may take this long; Node checks at this interval. The
      // headers' own limit may not exceed it.
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeout / 4))),
    },
    (req, res) => {
      if (routing.mcp?.(req, res)) return;
      void honoListener(req, res);
    },
  );
  capConnections(server, { max: config.maxConnections, perClient: config.maxConnectionsPerClient }, 'main', () => routing.logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  if (!config.publicUrlExplicit) config.publicUrl = `http://localhost:${port}`;
  let ready: Services;
  let mandate: MandateApp;
  try {
    ready = services ?? (await createServices(config));
    mandate = createApp(ready);
    await ready.start();
  } catch (error) {
    server.close();
    throw error;
  }
  routing.logger = ready.logger;
  routing.handler = (request, env) => mandate.app.fetch(request, env);
  routing.mcp = mcpListener({ proxy: ready.gateway.proxy, maxBodyBytes: config.maxBodyBytes, logger: ready.logger });
  return {
    url,
    services: ready,
    mandate,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await ready.close();
    },
  };
}
