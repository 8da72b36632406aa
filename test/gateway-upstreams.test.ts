import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CompleteResultSchema, CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEverything } from './support/mcp-upstreams.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * The gateway in front of real MCP servers from npm: server-everything over Streamable HTTP (a child
 * process on a loopback port) and server-filesystem over stdio (started by Mandate). The agent is the
 * SDK client.
 */
const FILESYSTEM = fileURLToPath(new URL('../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js', import.meta.url));

let server: TestServer;
let everything: ChildProcess;
let everythingUrl: string;
let root: string;
let agentId: string;
let client: { id: string; secret: string };
let policies = '';

async function json<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await server.api(method, path, body);
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function token(resource: string): Promise<string> {
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
  });
  return ((await response.json()) as { access_token: string }).access_token;
}

const resource = (name: string) => `${server.services.config.publicUrl}/mcp/${name}`;

async function connect(name: string, capabilities: Record<string, unknown> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/${name}`), { requestInit: { headers: { authorization: `Bearer ${await token(resource(name))}` } } });
  const agent = new Client({ name: 'agent', version: '1' }, { capabilities });
  await agent.connect(transport);
  return { client: agent, transport };
}

beforeAll(async () => {
  server = await startTestServer('sqlite');
  ({ child: everything, url: everythingUrl } = await startEverything());
  root = mkdtempSync(join(tmpdir(), 'mandate-fs-'));
  writeFileSync(join(root, 'notes.txt'), 'private notes');
  writeFileSync(join(root, 'public.txt'), 'public words');
  const owner = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'fs-owner@example.com', displayName: 'Owner' });
  agentId = (await json<{ id: string }>('POST', '/api/v1/agents', { name: 'agent', ownerId: owner.id })).id;
  const created = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' });
  client = { id: created.client_id, secret: created.client_secret };
  await json('POST', '/api/v1/mcp/servers', { name: 'everything', url: everythingUrl });
  await json('POST', '/api/v1/mcp/servers', { name: 'files', command: process.execPath, args: [FILESYSTEM, root] });
  await json('PUT', '/api/v1/policies', {
    cedar: (policies = `permit (principal == Agent::"${agentId}", action, resource in McpServer::"everything") unless { resource has name && resource.name == "get-env" };
permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource in McpServer::"files") when { resource.name like "read_*" || resource.name == "list_directory" || resource.name == "list_allowed_directories" };
forbid (principal, action == Action::"tools/call", resource == Tool::"files/read_text_file") when { context.args has path && context.args.path like "*notes*" };`),
  });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  everything?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('gateway in front of server-everything (Streamable HTTP)', () => {
  it('discovered the tools of the real upstream', async () => {
    const tools = await json<{ items: { name: string }[] }>('GET', '/api/v1/mcp/servers/everything/tools');
    expect(tools.items.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-env', 'trigger-long-running-operation']));
  });

  it('filters tools/list (SSE responses) without touching inputSchema, and returns results unchanged', async () => {
    const { client: agent } = await connect('everything');
    const bare = new Client({ name: 'bare', version: '1' });
    await bare.connect(new StreamableHTTPClientTransport(new URL(everythingUrl)));
    const direct = await bare.listTools();
    const through = await agent.listTools();
    const expected = direct.tools.filter((t) => t.name !== 'get-env');
    expect(through.tools).toEqual(expected);
    const sum = { name: 'get-sum', arguments: { a: 2, b: 40 } };
    expect(await agent.callTool(sum)).toEqual(await bare.callTool(sum));
    await expect(agent.callTool({ name: 'get-env', arguments: {} })).rejects.toThrow(/denied by policy/);
    await bare.close();
    await agent.close();
  });

  it('passes progress notifications through as they happen', async () => {
    const { client: agent } = await connect('everything');
    const progress: number[] = [];
    const result = await agent.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 3 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    expect(progress).toEqual([1, 2, 3]);
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    await agent.close();
  });

  it('relays server-to-client requests (sampling) and the client\'s response POST (202 passthrough)', async () => {
    const { client: agent } = await connect('everything', { sampling: {} });
    agent.setRequestHandler(CreateMessageRequestSchema, async () => ({ model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled!' } }));
    const result = await agent.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
    expect(JSON.stringify(result.content)).toContain('sampled!');
    await agent.close();
  });

  it('keeps the GET stream open for server notifications and ends sessions with DELETE', async () => {
    const { client: agent, transport } = await connect('everything');
    const logs: unknown[] = [];
    agent.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
    await agent.callTool({ name: 'echo', arguments: { message: 'x' } });
    const sessionId = transport.sessionId!;
    expect(sessionId).toMatch(/^mcs_/);
    await transport.terminateSession();
    const after = await fetch(`${server.url}/mcp/everything`, { method: 'POST', headers: { authorization: `Bearer ${await token(resource('everything'))}`, 'mcp-session-id': sessionId, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }) });
    expect(after.status).toBe(404);
    await agent.close();
  });

  it('MCP-TRANSPORT: an unknown session id is 404; another agent cannot use a session it learned', async () => {
    const headers = { authorization: `Bearer ${await token(resource('everything'))}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const unknown = await fetch(`${server.url}/mcp/everything`, { method: 'POST', headers: { ...headers, 'mcp-session-id': 'mcs_nope' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
    expect(unknown.status).toBe(404);
    const { transport, client: agent } = await connect('everything');
    const owner = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'thief@example.com', displayName: 'Thief' });
    const thief = await json<{ id: string }>('POST', '/api/v1/agents', { name: 'thief', ownerId: owner.id });
    const c = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${thief.id}/clients`, { auth: 'client_secret_basic' });
    const response = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: resource('everything') }).toString() });
    const thiefToken = ((await response.json()) as { access_token: string }).access_token;
    const stolen = await fetch(`${server.url}/mcp/everything`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${thiefToken}`, 'mcp-session-id': transport.sessionId! }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
    expect(stolen.status).toBe(404);
    await agent.close();
  });

  it('MCP-TRANSPORT DNS rebinding: a foreign Host or Origin is refused with 403', async () => {
    const headers = { authorization: `Bearer ${await token(resource('everything'))}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const origin = await fetch(`${server.url}/mcp/everything`, { method: 'POST', headers: { ...headers, origin: 'http://evil.example.com' }, body });
    expect(origin.status).toBe(403);
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${server.url}/mcp/everything`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, host: 'evil.example.com' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(403);
  });

  it('decides resources/read and prompts/get before they reach the upstream, and filters their lists', async () => {
    const { client: agent } = await connect('everything');
    const resources = (await agent.listResources()).resources;
    const prompts = (await agent.listPrompts()).prompts;
    expect(resources.length).toBeGreaterThan(1);
    expect(prompts.length).toBeGreaterThan(0);
    const [forbidden, allowed] = [resources[0]!.uri, resources[1]!.uri];
    const prompt = prompts.find((p) => !p.arguments || p.arguments.every((a) => !a.required)) ?? prompts[0]!;
    expect((await agent.readResource({ uri: forbidden })).contents.length).toBeGreaterThan(0);
    await json('PUT', '/api/v1/policies', {
      cedar: `${policies}
forbid (principal, action == Action::"resources/read", resource == Resource::${JSON.stringify(`everything/${forbidden}`)});
forbid (principal, action == Action::"prompts/get", resource == Prompt::${JSON.stringify(`everything/${prompt.name}`)});`,
    });
    try {
      await expect(agent.readResource({ uri: forbidden })).rejects.toThrow(/denied by policy/);
      expect((await agent.readResource({ uri: allowed })).contents.length).toBeGreaterThan(0);
      // Subscribing to a resource's updates needs the right to read it.
      await expect(agent.subscribeResource({ uri: forbidden })).rejects.toThrow(/denied by policy/);
      await agent.subscribeResource({ uri: allowed });
      await expect(agent.getPrompt({ name: prompt.name, arguments: {} })).rejects.toThrow(/denied by policy/);
      // Lists show only what may be read or got.
      const listed = (await agent.listResources()).resources.map((r) => r.uri);
      expect(listed).not.toContain(forbidden);
      expect(listed).toContain(allowed);
      expect((await agent.listPrompts()).prompts.map((p) => p.name)).not.toContain(prompt.name);
    } finally {
      await json('PUT', '/api/v1/policies', { cedar: policies });
      await agent.close();
    }
  });

  it('decides completion/complete as a get of the prompt or a read of the resource it completes', async () => {
    const { client: agent } = await connect('everything');
    const prompt = { type: 'ref/prompt' as const, name: 'completable-prompt' };
    const template = { type: 'ref/resource' as const, uri: 'demo://resource/dynamic/text/{resourceId}' };
    expect((await agent.complete({ ref: prompt, argument: { name: 'department', value: 'E' } })).completion.values).toContain('Engineering');
    expect((await agent.complete({ ref: template, argument: { name: 'resourceId', value: '7' } })).completion.values).toEqual(['7']);
    await json('PUT', '/api/v1/policies', {
      cedar: `${policies}
forbid (principal, action == Action::"prompts/get", resource == Prompt::"everything/completable-prompt");
forbid (principal, action == Action::"resources/read", resource == Resource::${JSON.stringify(`everything/${template.uri}`)});`,
    });
    try {
      await expect(agent.complete({ ref: prompt, argument: { name: 'department', value: 'E' } })).rejects.toThrow(/denied by policy/);
      await expect(agent.complete({ ref: template, argument: { name: 'resourceId', value: '7' } })).rejects.toThrow(/denied by policy/);
      // A completion without a name to decide on is refused, not forwarded.
      await expect(agent.request({ method: 'completion/complete', params: { ref: { type: 'ref/other' }, argument: { name: 'x', value: '' } } }, CompleteResultSchema)).rejects.toThrow(/ref.name is required/);
      await server.services.gateway.flushAudit();
      const events: { action: string; outcome: string; target: string }[] = [];
      for (let after: number | null = 0; after !== null; ) {
        const page: { items: typeof events; next: number | null } = await json('GET', `/api/v1/audit?after=${after}&limit=500`);
        events.push(...page.items);
        after = page.next;
      }
      const denied = events.filter((e) => e.action === 'mcp.completion/complete' && e.outcome === 'deny').map((e) => e.target);
      expect(denied).toEqual(expect.arrayContaining(['everything/completable-prompt', `everything/${template.uri}`]));
    } finally {
      await json('PUT', '/api/v1/policies', { cedar: policies });
      await agent.close();
    }
  });

  it('serves concurrent requests in one session', async () => {
    const { client: agent } = await connect('everything');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => agent.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } })));
    expect(results.map((r) => JSON.stringify(r.content))).toEqual(Array.from({ length: 10 }, (_, i) => expect.stringContaining(String(i + 1)) as unknown as string));
    await agent.close();
  });
});

describe('gateway in front of server-filesystem (stdio, started by Mandate)', () => {
  it('lists only permitted tools and decides on the arguments (a forbidden path never reaches the server)', async () => {
    const { client: agent } = await connect('files');
    const names = (await agent.listTools()).tools.map((t) => t.name);
    expect(names).toContain('read_text_file');
    expect(names).toContain('list_directory');
    expect(names).not.toContain('write_file');
    expect(names).not.toContain('move_file');
    const ok = await agent.callTool({ name: 'read_text_file', arguments: { path: join(root, 'public.txt') } });
    expect(JSON.stringify(ok.content)).toContain('public words');
    await expect(agent.callTool({ name: 'read_text_file', arguments: { path: join(root, 'notes.txt') } })).rejects.toThrow(/denied by policy/);
    await expect(agent.callTool({ name: 'write_file', arguments: { path: join(root, 'x.txt'), content: 'x' } })).rejects.toThrow(/denied by policy/);
    await agent.close();
  });
});
