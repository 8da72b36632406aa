import type { TestServer } from './server.ts';

/** What agentSession needs of a server: a test server in this process, or one run as a child process. */
export type GatewayHost = Pick<TestServer, 'api' | 'url'> & { services: { config: { publicUrl: string } } };

/**
 * One agent with an MCP session through the gateway: a human owner, the agent and its client, the
 * upstream registered as `demo`, a policy (`cedar(agentId)`), an access token for `/mcp/demo` and an
 * initialized session. For end-to-end tests that probe the `/mcp` endpoint itself.
 */
export async function agentSession(server: GatewayHost, options: { name: string; upstreamUrl: string; cedar: (agentId: string) => string }): Promise<{ agentId: string; accessToken: string; sessionId: string }> {
  const json = async (method: string, path: string, body?: unknown) => {
    const response = await server.api(method, path, body);
    if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${await response.text()}`);
    return (await response.json()) as Record<string, string>;
  };
  const owner = await json('POST', '/api/v1/humans', { email: `${options.name}@example.com`, displayName: options.name });
  const agent = await json('POST', '/api/v1/agents', { name: `${options.name}-agent`, ownerId: owner.id });
  const client = await json('POST', `/api/v1/agents/${agent.id}/clients`, { auth: 'client_secret_basic' });
  await json('POST', '/api/v1/mcp/servers', { name: 'demo', url: options.upstreamUrl });
  await json('PUT', '/api/v1/policies', { cedar: options.cedar(agent.id!) });
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.services.config.publicUrl}/mcp/demo` }).toString(),
  });
  const accessToken = ((await response.json()) as { access_token: string }).access_token;
  const init = await fetch(`${server.url}/mcp/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: options.name, version: '1' } } }),
  });
  await init.text();
  const sessionId = init.headers.get('mcp-session-id');
  if (!init.ok || !sessionId) throw new Error(`initialize through the gateway failed: ${init.status}`);
  return { agentId: agent.id!, accessToken, sessionId };
}
