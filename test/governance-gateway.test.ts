import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream, type DemoUpstream } from '../src/gateway/index.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Governance through the MCP gateway, end to end: the MCP SDK client as the agent, the real server,
 * the demo upstream recording what reaches it. A just-in-time grant changes what the agent may call at
 * once and its revocation or expiry takes it away; per-session separation of duties keeps two tools
 * out of one session.
 */
describe('governance at the gateway', () => {
  let server: TestServer;
  let upstream: DemoUpstream;
  let ownerId: string;
  let agentId: string;
  let client: { id: string; secret: string };

  async function json<T = Record<string, unknown>>(method: string, path: string, body?: unknown, expected = [200, 201]): Promise<T> {
    const response = await server.api(method, path, body);
    const text = await response.text();
    if (!expected.includes(response.status)) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  async function session(): Promise<Client> {
    const resource = `${server.services.config.publicUrl}/mcp/demo`;
    const response = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
    });
    const { access_token } = (await response.json()) as { access_token: string };
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${access_token}` } } });
    const mcp = new Client({ name: 'governed-agent', version: '1' });
    await mcp.connect(transport);
    return mcp;
  }

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    upstream = await startDemoUpstream({ requiredToken: 'upstream-token' });
    ownerId = (await json<{ id: string }>('POST', '/api/v1/humans', { email: 'gov-gw-owner@example.com', displayName: 'Owner' })).id;
    agentId = (await json<{ id: string }>('POST', '/api/v1/agents', { name: 'governed', ownerId })).id;
    const c = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' });
    client = { id: c.client_id, secret: c.client_secret };
    await json('POST', '/api/v1/mcp/servers', { name: 'demo', url: upstream.url, credential: { kind: 'bearer', token: 'upstream-token' } });
    // Tools are allowed by entitlement: `tool:<server>/<tool>` held by the agent.
    const cedar = ['echo', 'crm_lookup', 'send_email']
      .map((tool) => `permit (principal, action == Action::"tools/call", resource == Tool::"demo/${tool}") when { principal.entitlements.contains("tool:demo/${tool}") };`)
      .join('\n');
    await json('PUT', '/api/v1/policies', { cedar });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
  });

  it('a JIT grant lets the agent call the tool at once; revocation and expiry take it away at once, before anything reaches the upstream', async () => {
    const mcp = await session();
    const reached = () => upstream.calls.filter((c) => c.tool === 'echo').length;
    await expect(mcp.callTool({ name: 'echo', arguments: { message: 'before' } })).rejects.toThrow(/denied by policy/);
    expect(reached()).toBe(0);

    const request = await json<{ id: string }>('POST', '/api/v1/access-requests', { principalId: agentId, entitlement: 'tool:demo/echo', durationSeconds: 600, justification: 'incident 42' });
    await json('POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: ownerId });
    expect((await mcp.callTool({ name: 'echo', arguments: { message: 'during' } })).content).toEqual([{ type: 'text', text: 'echo: during' }]);
    expect(reached()).toBe(1);

    await json('POST', `/api/v1/access-requests/${request.id}/revoke`, { reason: 'incident closed' });
    await expect(mcp.callTool({ name: 'echo', arguments: { message: 'after revoke' } })).rejects.toThrow(/denied by policy/);
    expect(reached()).toBe(1);

    const again = await json<{ id: string }>('POST', '/api/v1/access-requests', { principalId: agentId, entitlement: 'tool:demo/echo', durationSeconds: 600, justification: 'incident 43' });
    await json('POST', `/api/v1/access-requests/${again.id}/approve`, { approverId: ownerId });
    await mcp.callTool({ name: 'echo', arguments: { message: 'again' } });
    expect(reached()).toBe(2);
    server.services.governance.clock.advance(600_000);
    // The expiry timer would fire at the real expiry; the clock was moved by hand, so sweep as the timer does.
    await server.services.governance.grants.sweep();
    await expect(mcp.callTool({ name: 'echo', arguments: { message: 'after expiry' } })).rejects.toThrow(/denied by policy/);
    expect(reached()).toBe(2);
    await mcp.close();
  });

  it('per-session separation of duties: after crm_lookup, send_email is refused in that session (never reaching the upstream) but allowed in a fresh one', async () => {
    await json('POST', '/api/v1/grants', { principalId: agentId, entitlement: 'tool:demo/crm_lookup' });
    await json('POST', '/api/v1/grants', { principalId: agentId, entitlement: 'tool:demo/send_email' });
    await json('POST', '/api/v1/sod/rules', { name: 'no-crm-then-mail', pairs: [['tool:demo/crm_lookup', 'tool:demo/send_email']], enforce: 'session' });
    const sent = () => upstream.calls.filter((c) => c.tool === 'send_email').length;

    const first = await session();
    await first.callTool({ name: 'crm_lookup', arguments: { customer: 'c1' } });
    const before = sent();
    await expect(first.callTool({ name: 'send_email', arguments: { to: 'x@example.com', body: 'hello' } })).rejects.toThrow(/separation of duties.*no-crm-then-mail/);
    expect(sent()).toBe(before);

    const second = await session();
    await second.callTool({ name: 'send_email', arguments: { to: 'x@example.com', body: 'hello' } });
    expect(sent()).toBe(before + 1);
    // And the other way round within that session.
    await expect(second.callTool({ name: 'crm_lookup', arguments: { customer: 'c1' } })).rejects.toThrow(/separation of duties/);

    await server.services.audit.flush();
    const { items } = (await server.services.audit.list(0, 100_000)) as { items: { action: string; outcome: string; details: Record<string, unknown> }[] };
    expect(items.some((e) => e.outcome === 'deny' && e.details.reason === 'sod_session')).toBe(true);
    await first.close();
    await second.close();
  });
});
