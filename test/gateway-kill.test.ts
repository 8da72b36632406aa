import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream, type DemoUpstream } from '../src/gateway/index.ts';
import { startReplicas, type Replicas } from './support/replicas.ts';

/**
 * Kill switch, limits and approvals on two replicas sharing one PostgreSQL: the agent's session lives on
 * replica 1, the admin acts through replica 0.
 */
let replicas: Replicas;
let upstream: DemoUpstream;
const agents: Record<string, { id: string; client: { id: string; secret: string } }> = {};
let ownerId: string;
let otherOwnerId: string;

async function until(condition: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function api<T = Record<string, unknown>>(replica: number, method: string, path: string, body?: unknown): Promise<T> {
  const response = await replicas.api(replica, method, path, body);
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function token(name: string): Promise<string> {
  const { client } = agents[name]!;
  const response = await fetch(`${replicas.servers[1]!.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${replicas.publicUrl}/mcp/demo` }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
  return body.access_token;
}

async function connect(name: string, replica = 1): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${replicas.servers[replica]!.url}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${await token(name)}` } } });
  const client = new Client({ name, version: '1' });
  await client.connect(transport);
  return { client, transport };
}

async function agent(name: string, owner: string, extra: Record<string, unknown> = {}): Promise<void> {
  const created = await api<{ id: string }>(0, 'POST', '/api/v1/agents', { name, ownerId: owner, ...extra });
  const client = await api<{ client_id: string; client_secret: string }>(0, 'POST', `/api/v1/agents/${created.id}/clients`, { auth: 'client_secret_basic' });
  agents[name] = { id: created.id, client: { id: client.client_id, secret: client.client_secret } };
}

const gateway = (replica: number) => replicas.servers[replica]!.services.gateway;

beforeAll(async () => {
  replicas = await startReplicas(2);
  upstream = await startDemoUpstream();
  ownerId = (await api<{ id: string }>(0, 'POST', '/api/v1/humans', { email: 'k-owner@example.com', displayName: 'Owner' })).id;
  otherOwnerId = (await api<{ id: string }>(0, 'POST', '/api/v1/humans', { email: 'k-other@example.com', displayName: 'Other' })).id;
  await agent('alpha', ownerId, { tags: ['fleet'], modelProvider: 'acme', model: 'acme-1' });
  await agent('beta', ownerId, { modelProvider: 'acme', model: 'acme-2' });
  await agent('gamma', otherOwnerId, { tags: ['fleet'] });
  await agent('delta', otherOwnerId);
  await api(0, 'POST', '/api/v1/mcp/servers', { name: 'demo', url: upstream.url });
  await api(0, 'PATCH', '/api/v1/mcp/servers/demo/tools/delete_record', { labels: ['destructive'] });
  // The replicas share a public URL (a load balancer's); tests reach them on their own loopback ports.
  await api(0, 'PATCH', '/api/v1/mcp/settings', { allowedHosts: replicas.servers.map((s) => new URL(s.url).host) });
  await api(0, 'PUT', '/api/v1/policies', {
    cedar: `permit (principal is Agent, action == Action::"tools/call", resource in McpServer::"demo") when { principal.status == "active" };
@approval("owner")
permit (principal is Agent, action == Action::"tools/call", resource) when { resource has labels && resource.labels.contains("destructive") };`,
  });
  await until(() => replicas.servers.every((s) => s.services.gateway.registry.server('demo') !== undefined && s.services.gateway.settings.current.allowedHosts.length === 2), 'replicas to see the registry and settings');
}, 60_000);

afterAll(async () => {
  await replicas?.stop();
  await upstream?.close();
});

describe('kill switch across replicas', () => {
  it('killing an agent on replica 0 closes its session on replica 1, cancels its in-flight call, and refuses new ones', async () => {
    const { client } = await connect('alpha');
    await client.callTool({ name: 'echo', arguments: { message: 'alive' } });
    const inFlight = client.callTool({ name: 'hold', arguments: { note: 'long' } });
    const failed = expect(inFlight).rejects.toThrow();
    await until(() => upstream.calls.some((c) => c.tool === 'hold'), 'the long call to reach the upstream');
    expect(gateway(1).sessions.ofIdentity(agents.alpha!.id)).toHaveLength(1);

    const killed = await api<{ suspended: string[] }>(0, 'POST', '/api/v1/mcp/kill', { agentId: agents.alpha!.id, reason: 'misbehaving' });
    expect(killed.suspended).toEqual([agents.alpha!.id]);
    await until(() => gateway(1).sessions.ofIdentity(agents.alpha!.id).length === 0, 'replica 1 to close the session');
    await failed;
    const count = upstream.calls.length;
    await expect(client.callTool({ name: 'echo', arguments: { message: 'again' } })).rejects.toThrow();
    await expect(connect('alpha')).rejects.toThrow();
    expect(upstream.calls.length).toBe(count);
    upstream.release();
    await client.close().catch(() => undefined);
    await api(0, 'POST', `/api/v1/agents/${agents.alpha!.id}/resume`);
  });

  it('a token issued before a kill on replica 0 stays refused on replica 1 after the resume; a new one works', async () => {
    const old = await token('delta');
    const accepted = async (accessToken: string, replica: number) => {
      try {
        await replicas.servers[replica]!.services.oauth.verifyAccessToken({ authorization: `Bearer ${accessToken}`, dpop: undefined, method: 'POST', url: `${replicas.publicUrl}/mcp/demo` }, { audience: `${replicas.publicUrl}/mcp/demo` });
        return true;
      } catch {
        return false;
      }
    };
    expect(await accepted(old, 1)).toBe(true);
    await api(0, 'POST', '/api/v1/mcp/kill', { agentId: agents.delta!.id, reason: 'incident' });
    await until(async () => !(await accepted(old, 1)), 'replica 1 to refuse the token');
    await api(0, 'POST', `/api/v1/agents/${agents.delta!.id}/resume`);
    // Replica 1 has seen the resume once it issues a new token (it refuses the client meanwhile) that passes there.
    await until(async () => accepted(await token('delta').catch(() => ''), 1), 'replica 1 to issue and accept a new token');
    expect(await accepted(old, 1)).toBe(false);
    const transport = new StreamableHTTPClientTransport(new URL(`${replicas.servers[1]!.url}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${old}` } } });
    await expect(new Client({ name: 'delta', version: '1' }).connect(transport)).rejects.toThrow();
    const { client } = await connect('delta');
    await client.callTool({ name: 'echo', arguments: { message: 'back' } });
    await client.close();
  });

  it('a call waiting for approval is cancelled by the kill switch', async () => {
    const { client } = await connect('beta');
    const waiting = expect(client.callTool({ name: 'delete_record', arguments: { id: 'x1' } })).rejects.toThrow(/cancelled|closed/);
    let approvalId = '';
    await until(async () => {
      const list = await api<{ items: { id: string; agentId: string }[] }>(0, 'GET', '/api/v1/mcp/approvals?status=pending');
      approvalId = list.items.find((a) => a.agentId === agents.beta!.id)?.id ?? '';
      return approvalId !== '';
    }, 'the approval request');
    await api(0, 'POST', '/api/v1/mcp/kill', { agentId: agents.beta!.id });
    await waiting;
    expect((await api<{ status: string }>(0, 'GET', `/api/v1/mcp/approvals/${approvalId}`)).status).toBe('cancelled');
    expect(upstream.calls.some((c) => c.tool === 'delete_record')).toBe(false);
    await client.close().catch(() => undefined);
    await api(0, 'POST', `/api/v1/agents/${agents.beta!.id}/resume`);
  });

  it('selects by owner, tag, model provider (and model), and everything', async () => {
    const ids = (...names: string[]) => names.map((n) => agents[n]!.id).sort();
    const resume = async (list: string[]) => {
      for (const id of list) await api(0, 'POST', `/api/v1/agents/${id}/resume`);
    };
    let result = await api<{ suspended: string[] }>(0, 'POST', '/api/v1/mcp/kill', { ownerId: otherOwnerId });
    expect(result.suspended.sort()).toEqual(ids('gamma', 'delta'));
    await resume(result.suspended);
    result = await api(0, 'POST', '/api/v1/mcp/kill', { tag: 'fleet' });
    expect(result.suspended.sort()).toEqual(ids('alpha', 'gamma'));
    await resume(result.suspended);
    result = await api(0, 'POST', '/api/v1/mcp/kill', { modelProvider: 'acme', model: 'acme-2' });
    expect(result.suspended).toEqual(ids('beta'));
    await resume(result.suspended);
    result = await api(0, 'POST', '/api/v1/mcp/kill', { modelProvider: 'acme' });
    expect(result.suspended.sort()).toEqual(ids('alpha', 'beta'));
    await resume(result.suspended);
    result = await api(0, 'POST', '/api/v1/mcp/kill', { all: true, reason: 'incident' });
    expect(result.suspended.sort()).toEqual(ids('alpha', 'beta', 'gamma', 'delta'));
    await resume(result.suspended);
    expect((await replicas.api(0, 'POST', '/api/v1/mcp/kill', { agentId: 'agt_doesnotexist00000000000000' })).status).toBe(404);
    expect((await replicas.api(0, 'POST', '/api/v1/mcp/kill', {})).status).toBe(400);
  });
});

describe('per-agent limits', () => {
  it('refuses calls over the agent\'s rate with a clear MCP error, without reaching the upstream', async () => {
    await api(0, 'PUT', `/api/v1/mcp/limits/${agents.delta!.id}`, { callsPerMinute: 2, maxSessions: null });
    await until(() => gateway(1).limits.own(agents.delta!.id)?.callsPerMinute === 2, 'replica 1 to load the limit');
    const { client } = await connect('delta');
    await client.callTool({ name: 'echo', arguments: { message: '1' } });
    await client.callTool({ name: 'echo', arguments: { message: '2' } });
    const count = upstream.calls.length;
    await expect(client.callTool({ name: 'echo', arguments: { message: '3' } })).rejects.toThrow(/rate limit/);
    expect(upstream.calls.length).toBe(count);
    await client.close();
  });

  it('refuses a session over the agent\'s concurrent-session limit with 429', async () => {
    await api(0, 'PUT', `/api/v1/mcp/limits/${agents.gamma!.id}`, { callsPerMinute: null, maxSessions: 1 });
    await until(() => gateway(1).limits.own(agents.gamma!.id)?.maxSessions === 1, 'replica 1 to load the limit');
    const first = await connect('gamma');
    await expect(connect('gamma')).rejects.toThrow(/429|too many/i);
    await first.transport.terminateSession();
    await first.client.close();
    const again = await connect('gamma');
    await again.client.close();
  });
});
