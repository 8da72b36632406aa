import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Hono } from 'hono';
import { asResponse } from '../../gateway/index.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';

/**
 * `/mcp/{server}`: the gateway's MCP endpoint (Streamable HTTP) for agents, with its own OAuth
 * resource-server authentication (not the admin API's), and its RFC 9728 metadata.
 */
export function registerMcpRoutes(app: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const { gateway, oauth } = services;
  app.all('/mcp/:server', async (c) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const socket = incoming?.socket as TLSSocket | undefined;
    // Mutual TLS terminated here: certificate-bound tokens are checked against the connection's certificate.
    const certificate = typeof socket?.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    return asResponse(await gateway.proxy.handle(c.req.raw, c.req.param('server'), incoming?.socket.remoteAddress, certificate));
  });

  // RFC 9728 §3.1: `https://h/mcp/x` → `https://h/.well-known/oauth-protected-resource/mcp/x`.
  app.get('/.well-known/oauth-protected-resource/mcp/:server', (c) => {
    const name = c.req.param('server');
    const server = gateway.registry.server(name);
    if (!server) return c.json({ error: 'not_found' }, 404);
    const resource = gateway.proxy.resourceUrl(name);
    return c.json(oauth.protectedResourceMetadata(resource, { name: `Mandate MCP gateway: ${name}`, ...(server.settings.requiredScopes && { scopes: server.settings.requiredScopes }) }));
  });
  docs.add({ method: 'post', path: '/mcp/{server}', tag: 'gateway', summary: 'MCP Streamable HTTP endpoint for agents (also GET for the server stream, DELETE to end a session); OAuth access token for this resource required', success: { status: 200, description: 'JSON-RPC response (application/json or text/event-stream), or 202 for notifications and responses' }, errors: ['TOKEN_MISSING', 'TOKEN_INVALID', 'TOKEN_SCOPE_INSUFFICIENT', 'MCP_SERVER_NOT_FOUND', 'GATEWAY_AGENT_INACTIVE'] });
}
