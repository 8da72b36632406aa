import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execFile } from 'node:child_process';
import { createHash, createHmac, randomUUID, type webcrypto } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oauthAuthenticator, POLICY_TEMPLATES, startDemoUpstream, type DemoUpstream } from '../src/gateway/index.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * End to end: the MCP SDK client as the agent, Mandate's real server with its OAuth server, the demo
 * upstream (the SDK's server) recording every call that reaches it.
 */
let server: TestServer;
let upstream: DemoUpstream;
let ownerId: string;
let agentId: string;
let otherAgentId: string;
let agentSecret: { id: string; secret: string };
let otherSecret: { id: string; secret: string };

async function json<T = Record<string, unknown>>(method: string, path: string, body?: unknown, expected = [200, 201]): Promise<T> {
  const response = await server.api(method, path, body);
  const text = await response.text();
  if (!expected.includes(response.status)) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function token(client: { id: string; secret: string }, resource: string): Promise<string> {
  const response = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
  return body.access_token;
}

async function agentClient(accessToken: string, name = 'demo'): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/${name}`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
  const client = new Client({ name: 'test-agent', version: '1' });
  await client.connect(transport);
  return client;
}

/** A loopback HTTP endpoint answering JSON (a token endpoint, a webhook receiver). */
async function listen(answer: (req: IncomingMessage, body: string) => unknown): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer(req, body)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const resource = (name = 'demo') => `${server.services.config.publicUrl}/mcp/${name}`;

async function applyPolicies(cedar: string): Promise<void> {
  await json('PUT', '/api/v1/policies', { cedar });
}

beforeAll(async () => {
  server = await startTestServer('sqlite');
  upstream = await startDemoUpstream({ requiredToken: 'upstream-secret-token' });
  const owner = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'owner@example.com', displayName: 'Owner', department: 'eng' });
  ownerId = owner.id;
  agentId = (await json<{ id: string }>('POST', '/api/v1/agents', { name: 'crm-agent', ownerId, tags: ['support'] })).id;
  otherAgentId = (await json<{ id: string }>('POST', '/api/v1/agents', { name: 'other-agent', ownerId })).id;
  const c1 = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' });
  const c2 = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${otherAgentId}/clients`, { auth: 'client_secret_basic' });
  agentSecret = { id: c1.client_id, secret: c1.client_secret };
  otherSecret = { id: c2.client_id, secret: c2.client_secret };
  const created = await json<{ server: { discoveryError: string | null }; tools: { name: string }[] }>('POST', '/api/v1/mcp/servers', { name: 'demo', url: upstream.url, credential: { kind: 'bearer', token: 'upstream-secret-token' } });
  expect(created.server.discoveryError).toBeNull();
  for (const [tool, labels] of Object.entries({ crm_lookup: ['private_data'], send_email: ['external_sink'], fetch_url: ['untrusted_content'], delete_record: ['destructive'] })) {
    await json('PATCH', `/api/v1/mcp/servers/demo/tools/${tool}`, { labels });
  }
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

describe('MCP gateway end to end', () => {
  it('registers the upstream with its discovered tools and never returns the credential', async () => {
    const body = await json<{ server: Record<string, unknown>; tools: { name: string; labels: string[] }[] }>('GET', '/api/v1/mcp/servers/demo');
    expect(body.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'crm_lookup', 'send_email', 'fetch_url', 'delete_record']));
    expect(body.server.credential).toEqual({ kind: 'bearer', configured: true });
    expect(JSON.stringify(body)).not.toContain('upstream-secret-token');
    expect(JSON.stringify(await json('GET', '/api/v1/vault/secrets'))).not.toContain('upstream-secret-token');
    // Tool settings reach policies as `resource.settings`; Cedar has no fractions, so neither do settings.
    expect((await server.api('PATCH', '/api/v1/mcp/servers/demo/tools/echo', { settings: { maxRows: 1.5 } })).status).toBe(400);
    expect(await json('PATCH', '/api/v1/mcp/servers/demo/tools/echo', { settings: { maxRows: 5, note: 'safe' } })).toMatchObject({ settings: { maxRows: 5, note: 'safe' } });
  });

  it('MCP-AUTH: no token → 401 with WWW-Authenticate pointing to RFC 9728 metadata', async () => {
    const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(metadataUrl).toBe(`${server.services.config.publicUrl}/.well-known/oauth-protected-resource/mcp/demo`);
    const metadata = (await (await fetch(metadataUrl!.replace(server.services.config.publicUrl, server.url))).json()) as { resource: string; authorization_servers: string[] };
    expect(metadata.resource).toBe(resource());
    expect(metadata.authorization_servers).toEqual([server.services.config.publicUrl]);
    expect(upstream.calls).toHaveLength(0);
  });

  it('MCP-AUTH: the admin token is not an agent token', async () => {
    const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain('invalid_token');
  });

  it('MCP-AUTH: a token for another resource is refused (audience)', async () => {
    const wrong = await token(agentSecret, `${server.services.config.publicUrl}/api/v1`);
    const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { authorization: `Bearer ${wrong}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    expect(response.status).toBe(401);
  });

  it('MCP-AUTH step-up: a token without the server\'s required scope gets 403 insufficient_scope naming it', async () => {
    await json('PATCH', '/api/v1/mcp/servers/demo', { settings: { requiredScopes: ['mcp:demo'] } });
    try {
      const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { authorization: `Bearer ${await token(agentSecret, resource())}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
      expect(response.status).toBe(403);
      const challenge = response.headers.get('www-authenticate') ?? '';
      expect(challenge).toContain('error="insufficient_scope"');
      expect(challenge).toContain('scope="mcp:demo"');
      expect(challenge).toContain('resource_metadata=');
    } finally {
      await json('PATCH', '/api/v1/mcp/servers/demo', { settings: {} });
    }
  });

  it('RFC9457 the gateway renders problem+json as the admin API does: one toProblem, extension members included', async () => {
    await json('PATCH', '/api/v1/mcp/servers/demo', { settings: { requiredScopes: ['mcp:demo'] } });
    try {
      const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { authorization: `Bearer ${await token(agentSecret, resource())}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      // The gateway's own renderer dropped an error's details: the scopes missing were only in the challenge.
      expect(await response.json()).toEqual({ type: 'https://mandate.dev/problems/token-scope-insufficient', title: 'TOKEN_SCOPE_INSUFFICIENT', status: 403, detail: 'the access token lacks scope mcp:demo', code: 'TOKEN_SCOPE_INSUFFICIENT', missing: ['mcp:demo'] });
    } finally {
      await json('PATCH', '/api/v1/mcp/servers/demo', { settings: {} });
    }
  });

  it('RFC9449 a DPoP-bound token works with a proof per request and is refused without one', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/echo");`);
    const created = await json<{ client_id: string; client_secret: string }>('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic', dpop: true });
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const jwk = await exportJWK(keys.publicKey);
    const proof = (method: string, url: string, accessToken?: string) =>
      new SignJWT({ htm: method, htu: url.split('?')[0], jti: randomUUID(), ...(accessToken && { ath: createHash('sha256').update(accessToken).digest('base64url') }) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(keys.privateKey);
    const tokenUrl = `${server.services.config.publicUrl}/oauth/token`;
    const issued = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof('POST', tokenUrl), authorization: `Basic ${Buffer.from(`${created.client_id}:${created.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: resource() }).toString(),
    });
    const body = (await issued.json()) as { access_token: string; token_type: string };
    expect(body.token_type.toLowerCase()).toBe('dpop');
    const dpopFetch: typeof fetch = async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const headers = new Headers(init?.headers);
      headers.set('authorization', `DPoP ${body.access_token}`);
      headers.set('dpop', await proof(init?.method ?? 'GET', url, body.access_token));
      return fetch(input, { ...init, headers });
    };
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/demo`), { fetch: dpopFetch });
    const client = new Client({ name: 'dpop-agent', version: '1' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'bound' } })).content).toEqual([{ type: 'text', text: 'echo: bound' }]);
    await client.close();
    const bare = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    expect(bare.status).toBe(401);
  });

  it('filters tools/list by policy, forwards allowed calls unchanged, and a forbidden call never reaches the upstream', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource in McpServer::"demo") when { !resource.labels.contains("destructive") && (resource.name != "echo" || resource.settings.maxRows == 5) };`);
    const client = await agentClient(await token(agentSecret, resource()));
    const listed = await client.listTools();
    const names = listed.tools.map((t) => t.name).sort();
    expect(names).toEqual(['crm_lookup', 'echo', 'fetch_url', 'hold', 'send_email', 'slow_count']);
    const echo = listed.tools.find((t) => t.name === 'echo')!;
    expect(echo.inputSchema).toMatchObject({ type: 'object', properties: { message: { type: 'string' } } });

    const result = await client.callTool({ name: 'echo', arguments: { message: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'echo: hi' }]);
    expect(upstream.calls.at(-1)).toMatchObject({ tool: 'echo', args: { message: 'hi' }, authorization: 'Bearer upstream-secret-token' });

    const before = upstream.calls.length;
    await expect(client.callTool({ name: 'delete_record', arguments: { id: 'r1' } })).rejects.toThrow(/denied by policy/);
    expect(upstream.calls.length).toBe(before);
    expect(upstream.calls.some((c) => c.tool === 'delete_record')).toBe(false);
    // The agent's own token never went upstream: only the injected credential did.
    expect(upstream.authorizations.every((a) => a === 'Bearer upstream-secret-token')).toBe(true);
    await client.close();
  });

  it('a call for nobody else: another agent without a permit sees no tools and is denied', async () => {
    const client = await agentClient(await token(otherSecret, resource()));
    expect((await client.listTools()).tools).toEqual([]);
    await expect(client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/denied by policy/);
    await client.close();
  });

  it('data-flow: reading private data then sending externally is blocked on the second call', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource in McpServer::"demo");\n${POLICY_TEMPLATES.find((t) => t.id === 'block-exfiltration')!.cedar}`);
    const client = await agentClient(await token(agentSecret, resource()));
    await client.callTool({ name: 'send_email', arguments: { to: 'a@b.example', body: 'hello' } });
    await client.callTool({ name: 'crm_lookup', arguments: { customer: 'acme' } });
    const sent = upstream.calls.filter((c) => c.tool === 'send_email').length;
    await expect(client.callTool({ name: 'send_email', arguments: { to: 'evil@attacker.example', body: 'the crm' } })).rejects.toThrow(/denied by policy/);
    expect(upstream.calls.filter((c) => c.tool === 'send_email').length).toBe(sent);
    await client.close();
    // A fresh session has touched nothing yet.
    const fresh = await agentClient(await token(agentSecret, resource()));
    await fresh.callTool({ name: 'send_email', arguments: { to: 'a@b.example', body: 'fine' } });
    await fresh.close();
  });

  it('approval: a gated call completes after the owner approves and fails after a denial', async () => {
    await applyPolicies(`@approval("owner")\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/delete_record");`);
    const client = await agentClient(await token(agentSecret, resource()));
    const pending = async () => {
      for (let i = 0; i < 500; i++) {
        const list = await json<{ items: { id: string; target: string; arguments: unknown }[] }>('GET', '/api/v1/mcp/approvals?status=pending');
        if (list.items.length > 0) return list.items[0]!;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('no approval request appeared');
    };
    // With a progress token the agent hears at once that its call waits for a human (and can keep it alive).
    const progress: { message?: string | undefined }[] = [];
    const call = client.callTool({ name: 'delete_record', arguments: { id: 'r42' } }, undefined, { onprogress: (p) => progress.push(p), resetTimeoutOnProgress: true });
    const request = await pending();
    expect(request).toMatchObject({ target: 'demo/delete_record', arguments: { id: 'r42' } });
    expect(upstream.calls.some((c) => c.tool === 'delete_record')).toBe(false);
    await json('POST', `/api/v1/mcp/approvals/${request.id}/approve`, { reason: 'ok' });
    expect((await call).content).toEqual([{ type: 'text', text: 'deleted r42' }]);
    expect(progress[0]?.message).toBe(`waiting for approval ${request.id}`);

    const denied = expect(client.callTool({ name: 'delete_record', arguments: { id: 'r43' } })).rejects.toThrow(/denied/);
    const second = await pending();
    await json('POST', `/api/v1/mcp/approvals/${second.id}/deny`, {});
    await denied;
    expect(upstream.calls.some((c) => c.tool === 'delete_record' && c.args.id === 'r43')).toBe(false);
    await client.close();
  });

  it('approval: an agent that gives up (notifications/cancelled) cancels its approval request, which can then never run the call', async () => {
    await applyPolicies(`@approval("owner")\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/delete_record");`);
    const client = await agentClient(await token(agentSecret, resource()));
    const abort = new AbortController();
    const call = expect(client.callTool({ name: 'delete_record', arguments: { id: 'abandoned' } }, undefined, { signal: abort.signal })).rejects.toThrow();
    let id = '';
    for (let i = 0; i < 500 && !id; i++) {
      const list = await json<{ items: { id: string; arguments: { id?: string } }[] }>('GET', '/api/v1/mcp/approvals?status=pending');
      id = list.items.find((a) => a.arguments.id === 'abandoned')?.id ?? '';
      if (!id) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    abort.abort();
    await call;
    let status = 'pending';
    for (let i = 0; i < 500 && status === 'pending'; i++) {
      status = (await json<{ status: string }>('GET', `/api/v1/mcp/approvals/${id}`)).status;
      if (status === 'pending') await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(status).toBe('cancelled');
    const late = await server.api('POST', `/api/v1/mcp/approvals/${id}/approve`, {});
    expect(late.status).toBe(409);
    expect(upstream.calls.some((c) => c.args.id === 'abandoned')).toBe(false);
    await client.close();
  });

  it('approval: an agent that hangs up while its call waits cancels the approval, and the gateway keeps serving', async () => {
    await applyPolicies(`@approval("owner")\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/delete_record");\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/echo");`);
    const accessToken = await token(agentSecret, resource());
    const client = await agentClient(accessToken);
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
    // A raw request, so the agent can hang up without announcing it (no notifications/cancelled).
    const hangUp = new AbortController();
    const response = await fetch(`${server.url}/mcp/demo`, {
      method: 'POST',
      signal: hangUp.signal,
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'hang-up', method: 'tools/call', params: { name: 'delete_record', arguments: { id: 'hung-up' } } }),
    });
    const waiting = new TextDecoder().decode((await response.body!.getReader().read()).value);
    const id = /waiting for approval (apr_\w+)/.exec(waiting)?.[1];
    expect(id).toBeDefined();
    hangUp.abort();
    let status = 'pending';
    for (let i = 0; i < 500 && status === 'pending'; i++) {
      status = (await json<{ status: string }>('GET', `/api/v1/mcp/approvals/${id}`)).status;
      if (status === 'pending') await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(status).toBe('cancelled');
    // Still serving (an enqueue into the cancelled stream used to end the process).
    expect((await client.callTool({ name: 'echo', arguments: { message: 'still here' } })).content).toEqual([{ type: 'text', text: 'echo: still here' }]);
    expect(upstream.calls.some((c) => c.args.id === 'hung-up')).toBe(false);
    await client.close();
  });

  it('approval: nobody deciding in time denies the call', async () => {
    await json('PATCH', '/api/v1/mcp/settings', { approvalTimeoutSeconds: 1 });
    const client = await agentClient(await token(agentSecret, resource()));
    await expect(client.callTool({ name: 'delete_record', arguments: { id: 'late' } })).rejects.toThrow(/timed out/);
    expect(upstream.calls.some((c) => c.args.id === 'late')).toBe(false);
    await json('PATCH', '/api/v1/mcp/settings', { approvalTimeoutSeconds: 120 });
    await client.close();
  });

  it('credential injection: header and OAuth client credentials; an upstream refusing the credential is a 502, never the agent\'s token', async () => {
    const requests: { authorization: string | undefined; body: string }[] = [];
    const tokenServer = await listen((req, body) => {
      requests.push({ authorization: req.headers.authorization, body });
      return { access_token: 'upstream-secret-token', token_type: 'Bearer', expires_in: 300 };
    });
    try {
      const tokenUrl = `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token`;
      const cc = await json<{ server: { discoveryError: string | null; credential: unknown }; tools: unknown[] }>('POST', '/api/v1/mcp/servers', { name: 'demo-cc', url: upstream.url, credential: { kind: 'oauth_client_credentials', tokenUrl, clientId: 'gateway', clientSecret: 'gw-secret-value', scope: 'mcp' } });
      expect(cc.server.discoveryError).toBeNull();
      expect(cc.server.credential).toEqual({ kind: 'oauth_client_credentials', configured: true });
      expect(requests[0]!.authorization).toBe(`Basic ${Buffer.from('gateway:gw-secret-value').toString('base64')}`);
      expect(new URLSearchParams(requests[0]!.body).get('grant_type')).toBe('client_credentials');
      const header = await json<{ server: { discoveryError: string | null } }>('POST', '/api/v1/mcp/servers', { name: 'demo-hdr', url: upstream.url, credential: { kind: 'header', name: 'Authorization', value: 'Bearer upstream-secret-token' } });
      expect(header.server.discoveryError).toBeNull();
      const bad = await json<{ server: { discoveryError: string | null } }>('POST', '/api/v1/mcp/servers', { name: 'demo-bad', url: upstream.url, credential: { kind: 'bearer', token: 'wrong' } });
      expect(bad.server.discoveryError).toMatch(/discovery failed/);
      await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource);`);
      for (const name of ['demo-cc', 'demo-hdr']) {
        const client = await agentClient(await token(agentSecret, resource(name)), name);
        expect((await client.callTool({ name: 'echo', arguments: { message: name } })).content).toEqual([{ type: 'text', text: `echo: ${name}` }]);
        await client.close();
      }
      await expect(agentClient(await token(agentSecret, resource('demo-bad')), 'demo-bad')).rejects.toThrow();
      const listing = JSON.stringify(await json('GET', '/api/v1/mcp/servers'));
      expect(listing).not.toContain('gw-secret-value');
      expect(listing).not.toContain('upstream-secret-token');
      expect(upstream.authorizations.every((a) => a === 'Bearer upstream-secret-token' || a === 'Bearer wrong')).toBe(true);
    } finally {
      tokenServer.close();
    }
  });

  it('approval requests are announced to the webhook, signed', async () => {
    const deliveries: { signature: string | undefined; body: string }[] = [];
    const receiver = await listen((req, body) => {
      deliveries.push({ signature: req.headers['mandate-signature'] as string | undefined, body });
      return {};
    });
    try {
      await json('PATCH', '/api/v1/mcp/settings', { approvalWebhookUrl: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, approvalWebhookSecret: 'webhook-secret-0123456789' });
      const settings = await json<Record<string, unknown>>('GET', '/api/v1/mcp/settings');
      expect(settings.approvalWebhookSecret).toEqual({ configured: true });
      expect(JSON.stringify(settings)).not.toContain('webhook-secret-0123456789');
      await applyPolicies(`@approval("owner")\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/delete_record");`);
      const client = await agentClient(await token(agentSecret, resource()));
      const call = client.callTool({ name: 'delete_record', arguments: { id: 'hooked', password: 'p4ss' } });
      for (let i = 0; i < 500 && deliveries.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const delivery = deliveries[0]!;
      const [t, v1] = delivery.signature!.split(',').map((part) => part.split('=')[1]!);
      expect(v1).toBe(createHmac('sha256', 'webhook-secret-0123456789').update(`${t}.${delivery.body}`).digest('hex'));
      const announced = JSON.parse(delivery.body) as { type: string; approval: { id: string; agentId: string; ownerId: string; target: string; arguments: Record<string, unknown> } };
      expect(announced).toMatchObject({ type: 'mcp.approval.requested', approval: { agentId, ownerId, target: 'demo/delete_record', arguments: { id: 'hooked', password: '[redacted]' } } });
      await json('POST', `/api/v1/mcp/approvals/${announced.approval.id}/approve`);
      expect((await call).content).toEqual([{ type: 'text', text: 'deleted hooked' }]);
      await client.close();
    } finally {
      await json('PATCH', '/api/v1/mcp/settings', { approvalWebhookUrl: null, approvalWebhookSecret: null });
      receiver.close();
    }
  });

  it('audits every decision with the argument digest, redacted arguments and the determining policies', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/echo");`);
    const client = await agentClient(await token(agentSecret, resource()));
    await client.callTool({ name: 'echo', arguments: { message: 'audited', password: 'hunter2' } });
    await client.close();
    await server.services.gateway.flushAudit();
    const page = await server.services.audit.list(0, 5000);
    const rows = (page.items as { action: string; outcome: string; details: Record<string, unknown> }[]).filter((r) => r.action === 'mcp.tools/call' && (r.details.args as { message?: string } | undefined)?.message === 'audited');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.outcome).toBe('allow');
    expect(rows[0]!.details).toMatchObject({ agent: agentId, owner: ownerId, server: 'demo', args: { message: 'audited', password: '[redacted]' }, policies: ['policy0'] });
    expect(rows[0]!.details.argsDigest).toMatch(/^[0-9a-f]{64}$/);
    // What the upstream answered is a second record, linked to the decision by its seq.
    const decision = rows[0] as unknown as { seq: number; details: Record<string, unknown> };
    const outcome = (page.items as { action: string; outcome: string; details: Record<string, unknown> }[]).find((r) => r.action === 'mcp.tools/call.result' && r.details.decision === decision.seq);
    expect(outcome).toMatchObject({ outcome: 'ok', details: { upstreamStatus: 200, argsDigest: decision.details.argsDigest } });
    expect(JSON.stringify(page.items)).not.toContain('hunter2');
  });

  it('when the upstream forgets a session, the gateway ends its own and answers 404 so the agent starts afresh', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/echo");`);
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${await token(agentSecret, resource())}` } } });
    const client = new Client({ name: 'forgotten', version: '1' });
    await client.connect(transport);
    const session = server.services.gateway.sessions.get(transport.sessionId!)!;
    const ended = await fetch(upstream.url, { method: 'DELETE', headers: { authorization: 'Bearer upstream-secret-token', 'mcp-session-id': session.upstreamSessionId! } });
    expect(ended.status).toBe(200);
    await expect(client.callTool({ name: 'echo', arguments: { message: 'lost' } })).rejects.toThrow();
    expect(server.services.gateway.sessions.get(session.id)).toBeUndefined();
    await client.close().catch(() => undefined);
  });

  it('intersection: acting for a user, a call must be allowed for the agent and for the user', async () => {
    // Delegated tokens come from the authorization-code flow plus token exchange (covered in oauth tests);
    // here the real verifier checks the agent's token and a test wrapper adds the user it acts for.
    const eng = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'eng-user@example.com', displayName: 'Eng', department: 'eng' });
    const sales = await json<{ id: string }>('POST', '/api/v1/humans', { email: 'sales-user@example.com', displayName: 'Sales', department: 'sales' });
    const real = oauthAuthenticator(server.services.oauth);
    let actingFor = eng.id;
    server.services.gateway.setAuthenticator(async (request, options) => ({ ...(await real(request, options)), userId: actingFor, chain: [agentId] }));
    try {
      await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource == Tool::"demo/echo");
permit (principal is Human, action == Action::"tools/call", resource == Tool::"demo/echo") when { principal has department && principal.department == "eng" && context has user && context.user == principal };`);
      const asEng = await agentClient(await token(agentSecret, resource()));
      expect((await asEng.callTool({ name: 'echo', arguments: { message: 'for eng' } })).content).toEqual([{ type: 'text', text: 'echo: for eng' }]);
      // The session is bound to the user: a request for someone else cannot continue it.
      actingFor = sales.id;
      await expect(asEng.callTool({ name: 'echo', arguments: { message: 'switched' } })).rejects.toThrow();
      await asEng.close().catch(() => undefined);
      const asSales = await agentClient(await token(agentSecret, resource()));
      expect((await asSales.listTools()).tools).toEqual([]);
      const count = upstream.calls.length;
      await expect(asSales.callTool({ name: 'echo', arguments: { message: 'for sales' } })).rejects.toThrow(new RegExp(`denied by policy: tools/call demo/echo for user ${sales.id}`));
      expect(upstream.calls.length).toBe(count);
      await asSales.close();
      await server.services.gateway.flushAudit();
      const rows = ((await server.services.audit.list(0, 10000)).items as { action: string; outcome: string; details: Record<string, unknown> }[]).filter((r) => r.action === 'mcp.tools/call' && r.details.user !== null && r.details.user !== undefined);
      expect(rows.find((r) => r.details.user === eng.id)).toMatchObject({ outcome: 'allow', details: { chain: [agentId] } });
      expect(rows.find((r) => r.details.user === sales.id)).toMatchObject({ outcome: 'deny', details: { reason: 'policy_user' } });
    } finally {
      server.services.gateway.setAuthenticator(real);
    }
  });

  it('kill switch: suspending the agent closes its open session and denies new calls', async () => {
    await applyPolicies(`permit (principal == Agent::"${agentId}", action == Action::"tools/call", resource in McpServer::"demo");`);
    const client = await agentClient(await token(agentSecret, resource()));
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    expect(server.services.gateway.sessions.ofIdentity(agentId).length).toBeGreaterThan(0);
    const killed = await json<{ suspended: string[] }>('POST', '/api/v1/mcp/kill', { agentId, reason: 'test' });
    expect(killed.suspended).toEqual([agentId]);
    expect(server.services.gateway.sessions.ofIdentity(agentId)).toEqual([]);
    const count = upstream.calls.length;
    await expect(client.callTool({ name: 'echo', arguments: { message: 'after' } })).rejects.toThrow();
    expect(upstream.calls.length).toBe(count);
    await client.close().catch(() => undefined);
    await json('POST', `/api/v1/agents/${agentId}/resume`, {});
  });

  it('mandate kill (CLI) suspends through the API and prints what it stopped', async () => {
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['src/cli/main.ts', ...args, '--url', server.url, '--token', server.adminToken], (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }));
      });
    const victim = await json<{ id: string }>('POST', '/api/v1/agents', { name: 'cli-victim', ownerId, tags: ['cli-kill'] });
    const result = await cli(['kill', '--tag', 'cli-kill', '--reason', 'cli test', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ suspended: [victim.id] });
    expect((await json<{ status: string }>('GET', `/api/v1/agents/${victim.id}`)).status).toBe('suspended');
    const usage = await cli(['kill', '--tag', 'a', '--all']);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toContain('CLI_USAGE');
  });
});
