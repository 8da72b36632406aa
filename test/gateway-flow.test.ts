import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_TEMPLATES } from '../src/gateway/index.ts';
import './support/fast-check-seed.ts';
import { startLenientUpstream, type LenientUpstream } from './support/lenient-upstream.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Hardening findings 3 and 5: a JSON-RPC batch must not walk past the data-flow rules, and a tool or
 * prompt name the registry does not know exactly is never forwarded, however leniently the upstream
 * matches names. Real server, real upstreams over HTTP, the MCP SDK client as the agent where it can
 * speak (it never sends batches, so those are raw posts).
 */
let server: TestServer;
let lenient: LenientUpstream;
let grow: LenientUpstream;
let fuzz: LenientUpstream;
let agentId: string;
let accessToken: string;

async function json<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await server.api(method, path, body);
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

const template = (id: string) => POLICY_TEMPLATES.find((t) => t.id === id)!.cedar;

beforeAll(async () => {
  server = await startTestServer('sqlite');
  [lenient, grow, fuzz] = await Promise.all([startLenientUpstream(), startLenientUpstream({ listed: ['echo'] }), startLenientUpstream()]);
  const owner = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'flow@example.com', displayName: 'Flow' });
  agentId = (await json<{ id: string }>('POST', '/api/v1/agents', { name: 'flow-agent', ownerId: owner.id })).id;
  const client = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' });
  for (const [name, upstream] of [['lenient', lenient], ['grow', grow], ['fuzz', fuzz]] as const) {
    await json('POST', '/api/v1/mcp/servers', { name, url: upstream.url });
    await json('PATCH', `/api/v1/mcp/servers/${name}/tools/read_secret`, { labels: ['private_data'] }).catch(() => undefined);
    await json('PATCH', `/api/v1/mcp/servers/${name}/tools/send_external`, { labels: ['external_sink'] }).catch(() => undefined);
  }
  // The finding's setting: the shipped templates, plus explicit permits for the two labelled tools.
  await json('PUT', '/api/v1/policies', {
    cedar: [
      template('block-exfiltration'),
      template('permit-unlabelled-tools'),
      'permit (principal, action == Action::"tools/call", resource) when { resource has name && ["read_secret", "send_external"].contains(resource.name) };',
      'permit (principal, action == Action::"prompts/get", resource);',
    ].join('\n'),
  });
  await json('PATCH', '/api/v1/mcp/settings', { callsPerMinute: null });
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.services.config.publicUrl}/mcp` }).toString(),
  });
  accessToken = ((await response.json()) as { access_token: string }).access_token;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await Promise.all([lenient?.close(), grow?.close(), fuzz?.close()]);
});

interface Answer {
  status: number;
  body: unknown;
}

async function post(name: string, session: string | undefined, body: unknown, protocolVersion?: string): Promise<Answer & { session: string | null }> {
  const response = await fetch(`${server.url}/mcp/${name}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${accessToken}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(session && { 'mcp-session-id': session }),
      ...(protocolVersion && { 'mcp-protocol-version': protocolVersion }),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, session: response.headers.get('mcp-session-id') };
}

/** A fresh session on `name` that negotiated `protocolVersion`. */
async function open(name: string, protocolVersion: string): Promise<string> {
  const init = await post(name, undefined, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  expect(init.status).toBe(200);
  expect((init.body as { result: { protocolVersion: string } }).result.protocolVersion).toBe(protocolVersion);
  await post(name, init.session!, { jsonrpc: '2.0', method: 'notifications/initialized' }, protocolVersion);
  return init.session!;
}

const call = (id: number, name: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

async function agent(name: string): Promise<Client> {
  const client = new Client({ name: 'flow-agent', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/${name}`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }));
  return client;
}

async function auditRows(action: string): Promise<{ action: string; outcome: string; target: string; details: Record<string, unknown> }[]> {
  await server.services.gateway.flushAudit();
  const page = await server.services.audit.list(0, 5000);
  return (page.items as { action: string; outcome: string; target: string; details: Record<string, unknown> }[]).filter((r) => r.action === action);
}

describe('finding 3: JSON-RPC batches and the data-flow rules', () => {
  it('sent one after another, send_external after read_secret is denied (the rule the batch must not walk past)', async () => {
    const session = await open('lenient', '2025-06-18');
    expect((await post('lenient', session, call(1, 'read_secret'), '2025-06-18')).body).toMatchObject({ result: { content: [{ text: 'ran read_secret' }] } });
    expect((await post('lenient', session, call(2, 'send_external'), '2025-06-18')).body).toMatchObject({ error: { code: -32003, data: { code: 'GATEWAY_DENIED' } } });
    expect(lenient.calls.filter((c) => c.ran === 'send_external')).toHaveLength(0);
  });

  it('a 2025-06-18 session (no batches in its protocol) gets a batch refused whole with -32600, nothing forwarded', async () => {
    const before = lenient.calls.length;
    const session = await open('lenient', '2025-06-18');
    const answer = await post('lenient', session, [call(1, 'read_secret'), call(2, 'send_external')], '2025-06-18');
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ id: null, error: { code: -32600 } });
    expect(lenient.calls.length).toBe(before);
    // Even a batch of harmless calls: the protocol has no batches.
    expect((await post('lenient', session, [call(3, 'echo')], '2025-06-18')).status).toBe(400);
    expect(lenient.calls.length).toBe(before);
    const refused = (await auditRows('mcp.tools/call')).filter((r) => r.details.session === session && r.details.reason === 'batch_refused');
    expect(refused).toHaveLength(3);
    expect(refused.map((r) => r.target).sort()).toEqual(['lenient/echo', 'lenient/read_secret', 'lenient/send_external']);
    expect(refused.every((r) => r.outcome === 'deny')).toBe(true);
  });

  it('a 2025-03-26 session: [read_secret, send_external] is decided as if sent in turn, send_external is denied and nothing is forwarded or counted', async () => {
    const before = lenient.calls.length;
    const session = await open('lenient', '2025-03-26');
    const answer = await post('lenient', session, [call(1, 'read_secret'), call(2, 'send_external')], '2025-03-26');
    expect(answer.status).toBe(200);
    const [first, second] = answer.body as { id: number; error?: { code: number; message: string; data?: { policies?: string[] } } }[];
    expect(first).toMatchObject({ id: 1, error: { code: -32003, message: expect.stringMatching(/not forwarded/) } });
    expect(second).toMatchObject({ id: 2, error: { code: -32003, data: { code: 'GATEWAY_DENIED' } } });
    expect(lenient.calls.length).toBe(before);
    // Nothing of the refused batch is committed to the session: no labels, no calls.
    const sessions = (await json<{ items: { id: string; labels: string[]; calls: number }[] }>('GET', '/api/v1/mcp/sessions')).items;
    expect(sessions.find((s) => s.id === session)).toMatchObject({ labels: [], calls: 0 });
    expect((await post('lenient', session, call(3, 'send_external'), '2025-03-26')).body).toMatchObject({ result: { content: [{ text: 'ran send_external' }] } });
    const rows = (await auditRows('mcp.tools/call')).filter((r) => r.details.session === session);
    expect(rows.find((r) => r.target === 'lenient/send_external' && r.outcome === 'deny')?.details.reason).toBe('policy');
    expect(rows.find((r) => r.target === 'lenient/read_secret')).toMatchObject({ outcome: 'deny', details: { reason: 'batch_sibling_refused' } });
    // Once a call is refused, the calls after it are not decided (no approval is asked for a call that cannot run), only refused and audited.
    const third = await post('lenient', session, [call(4, 'read_secret'), call(5, 'send_external'), call(6, 'echo')], '2025-03-26');
    expect((third.body as { id: number; error: { message: string } }[]).map((m) => [m.id, m.error.message])).toEqual([
      [4, expect.stringMatching(/not forwarded/)],
      [5, expect.stringMatching(/denied by policy/)],
      [6, expect.stringMatching(/not forwarded/)],
    ]);
    expect((await auditRows('mcp.tools/call')).find((r) => r.details.session === session && r.target === 'lenient/echo')).toMatchObject({ outcome: 'deny', details: { reason: 'batch_sibling_refused' } });
    expect(lenient.calls.length).toBe(before + 1);
  });

  it('a 2025-03-26 session: an allowed batch is forwarded whole; initialize in a batch and duplicate ids are refused whole', async () => {
    const session = await open('lenient', '2025-03-26');
    const before = lenient.calls.length;
    const ok = await post('lenient', session, [call(1, 'echo'), { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }, call(2, 'read_secret')], '2025-03-26');
    expect(ok.body).toMatchObject([{ id: 1, result: {} }, { id: 2, result: {} }]);
    expect(lenient.calls.length).toBe(before + 2);
    const init = { jsonrpc: '2.0', id: 9, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
    expect(await post('lenient', session, [call(3, 'echo'), init], '2025-03-26')).toMatchObject({ status: 400, body: { error: { code: -32600, message: expect.stringMatching(/initialize/) } } });
    expect(await post('lenient', session, [call(4, 'echo'), call(4, 'echo')], '2025-03-26')).toMatchObject({ status: 400, body: { error: { code: -32600, message: expect.stringMatching(/distinct ids/) } } });
    expect(lenient.calls.length).toBe(before + 2);
  });
});

describe('finding 5: tool and prompt names the registry does not know', () => {
  it('hostile spellings of a hidden tool and a differently-cased sink are refused as unknown (after one rediscovery) and never reach the upstream', async () => {
    const client = await agent('lenient');
    try {
      expect((await client.callTool({ name: 'read_secret', arguments: {} })).content).toEqual([{ type: 'text', text: 'ran read_secret' }]);
      const listsBefore = lenient.lists();
      const callsBefore = lenient.calls.length;
      const hostile = ['hidden_admin', 'HIDDEN_ADMIN', 'ｈｉｄｄｅｎ_admin', '../hidden_admin', '\uFEFFhidden_admin', 'Send_External', 'SEND_EXTERNAL', 'send_external\u200B'];
      // Concurrent unknown names share one rediscovery; later ones within the interval start none.
      const outcomes = await Promise.allSettled(hostile.map((name) => client.callTool({ name, arguments: {} })));
      for (const [i, outcome] of outcomes.entries()) {
        expect(outcome.status, hostile[i]).toBe('rejected');
        expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/-32602.*unknown tool/);
      }
      expect(lenient.calls.length).toBe(callsBefore);
      expect(lenient.lists() - listsBefore).toBe(1);
      await expect(client.callTool({ name: 'HIDDEN_ADMIN', arguments: {} })).rejects.toThrow(/unknown tool/);
      expect(lenient.lists() - listsBefore).toBe(1);
      // The exactly spelled sink is still decided by the flow rule.
      await expect(client.callTool({ name: 'send_external', arguments: {} })).rejects.toThrow(/denied by policy/);
      expect(lenient.calls.slice(callsBefore)).toEqual([]);
      expect(lenient.calls.some((c) => c.ran === 'hidden_admin')).toBe(false);
    } finally {
      await client.close();
    }
    const rows = (await auditRows('mcp.tools/call')).filter((r) => r.details.reason === 'unknown_tool');
    expect(rows.map((r) => r.target)).toEqual(expect.arrayContaining(['lenient/HIDDEN_ADMIN', 'lenient/../hidden_admin', 'lenient/Send_External']));
    expect(rows.every((r) => r.outcome === 'deny')).toBe(true);
  });

  it('prompts/get and completions name only a prompt the upstream lists, exactly; hidden and respelled prompts are refused and never forwarded', async () => {
    const client = await agent('lenient');
    try {
      expect((await client.getPrompt({ name: 'greeting' })).messages).toEqual([{ role: 'user', content: { type: 'text', text: 'prompt greeting' } }]);
      const before = lenient.calls.length;
      for (const name of ['hidden_prompt', 'GREETING', 'ｇｒｅｅｔｉｎｇ', '../greeting', '\uFEFFgreeting']) {
        await expect(client.getPrompt({ name }), name).rejects.toThrow(/-32602.*unknown prompt/);
      }
      const session = await open('lenient', '2025-06-18');
      const completion = { jsonrpc: '2.0', id: 7, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'HIDDEN_PROMPT' }, argument: { name: 'a', value: '' } } };
      expect((await post('lenient', session, completion, '2025-06-18')).body).toMatchObject({ error: { code: -32602, data: { code: 'GATEWAY_UNKNOWN_PROMPT' } } });
      expect(lenient.calls.slice(before)).toEqual([]);
    } finally {
      await client.close();
    }
    const rows = (await auditRows('mcp.prompts/get')).filter((r) => r.details.reason === 'unknown_prompt');
    expect(rows.map((r) => r.target)).toEqual(expect.arrayContaining(['lenient/hidden_prompt', 'lenient/GREETING']));
  });

  it('a repeated member name (parsers disagree which one counts) is refused, so the upstream cannot read another name or method than was decided', async () => {
    const session = await open('lenient', '2025-06-18');
    const before = lenient.calls.length;
    for (const text of [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"HIDDEN_ADMIN","name":"echo","arguments":{}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hidden_admin","n\\u0061me":"echo"}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"send_external"},"method":"ping"}',
    ]) {
      const answer = await post('lenient', session, text, '2025-06-18');
      expect(answer, text).toMatchObject({ status: 400, body: { error: { code: -32700 } } });
    }
    expect(lenient.calls.slice(before)).toEqual([]);
  });

  it('a tool the upstream added after discovery is callable after the one rediscovery', async () => {
    grow.addTool('late_tool');
    const client = await agent('grow');
    try {
      const lists = grow.lists();
      expect((await client.callTool({ name: 'late_tool', arguments: {} })).content).toEqual([{ type: 'text', text: 'ran late_tool' }]);
      expect(grow.lists() - lists).toBe(1);
      expect((await json<{ tools: { name: string }[] }>('GET', '/api/v1/mcp/servers/grow')).tools.map((t) => t.name)).toContain('late_tool');
      // Known now: no further rediscovery.
      await client.callTool({ name: 'late_tool', arguments: {} });
      expect(grow.lists() - lists).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('property: whatever string names the tool, a name not in the registry is never forwarded', async () => {
    const session = await open('fuzz', '2025-06-18');
    const known = new Set(['echo', 'read_secret', 'send_external']);
    const names = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.constantFrom('echo', 'ECHO', 'ｅｃｈｏ', '\uFEFFecho', 'echo ', './echo', 'hidden_admin', 'Hidden_Admin', 'read_secret\u0000'),
      fc.tuple(fc.constantFrom(...known), fc.constantFrom('\u200B', '\uFEFF', ' ', '/', '\u0301')).map(([n, x]) => n + x),
    );
    let id = 100;
    await fc.assert(
      fc.asyncProperty(names, async (name) => {
        const answer = await post('fuzz', session, call(id++, name), '2025-06-18');
        expect(answer.status).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
    const forwarded = fuzz.calls.filter((c) => c.method === 'tools/call').map((c) => c.sent);
    expect(forwarded.filter((name) => typeof name !== 'string' || !known.has(name))).toEqual([]);
  });
});
