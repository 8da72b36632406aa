import { webcrypto } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import '@abraham/reflection';
import * as x509 from '@peculiar/x509';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { CookieJar, csrfOf } from './oauth-support.ts';

// Regression tests for the independent security review (docs/threat-model.md, "Review 2026-11-23").

const POLICIES = `
permit (principal is Agent, action == Action::"tools/call", resource == Tool::"everything/echo")
when { principal.owner has department && principal.owner.department == "eng" && principal.status == "active" };
permit (principal is Agent, action == Action::"tools/call", resource is Tool)
when { principal.status == "active" && !(resource.labels.contains("destructive")) };
`;

describe('security review: AuthZEN properties cannot rewrite what the registry says', () => {
  let server: TestServer;
  let engOwner: string;
  let salesAgent: string;
  const authzen = (body: unknown) => server.api('POST', '/access/v1/evaluation', body);

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    engOwner = ((await (await server.api('POST', '/api/v1/humans', { email: 'eng@example.com', displayName: 'Eng', department: 'eng' })).json()) as { id: string }).id;
    const sales = ((await (await server.api('POST', '/api/v1/humans', { email: 'sales@example.com', displayName: 'Sales', department: 'sales' })).json()) as { id: string }).id;
    salesAgent = ((await (await server.api('POST', '/api/v1/agents', { name: 'sales-agent', ownerId: sales })).json()) as { id: string }).id;
    expect((await server.api('PUT', '/api/v1/policies', { cedar: POLICIES })).status).toBe(200);
  });
  afterAll(() => server.stop());

  const echo = { action: { name: 'tools/call' }, resource: { type: 'Tool', id: 'everything/echo' } };

  it('the registry decides: an agent owned by sales is denied', async () => {
    expect(await (await authzen({ subject: { type: 'Agent', id: salesAgent }, ...echo })).json()).toEqual({ decision: false });
  });

  it('subject.properties cannot replace a registry principal\'s owner or status', async () => {
    const response = await authzen({ subject: { type: 'Agent', id: salesAgent, properties: { owner: { __entity: { type: 'Human', id: engOwner } } } }, ...echo });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('AUTHZEN_PROPERTIES_RESERVED');
  });

  it('subject.properties cannot fabricate a registry principal that does not exist', async () => {
    const response = await authzen({ subject: { type: 'Agent', id: 'agt_made_up', properties: { status: 'active', owner: { __entity: { type: 'Human', id: engOwner } } } }, ...echo });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('AUTHZEN_PROPERTIES_RESERVED');
  });

  it('resource.properties cannot strip the labels of a gateway tool', async () => {
    const response = await authzen({ subject: { type: 'Agent', id: salesAgent }, action: { name: 'tools/call' }, resource: { type: 'Tool', id: 'srv/delete', properties: { labels: [] } } });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('AUTHZEN_PROPERTIES_RESERVED');
  });

  it('batch evaluations are held to the same rule (and nothing is decided)', async () => {
    const response = await server.api('POST', '/access/v1/evaluations', { ...echo, evaluations: [{ subject: { type: 'Agent', id: salesAgent } }, { subject: { type: 'Agent', id: salesAgent, properties: { status: 'active' } } }] });
    expect(response.status).toBe(400);
  });
});

describe('security review: the gateway decides every tools/call, whatever its id', () => {
  let server: TestServer;
  let raw: Server;
  const received: string[] = [];
  let accessToken: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    // A bare JSON-RPC upstream that records every body reaching it (a lenient server may run a call whose id is null).
    raw = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(body);
        const message = body ? (JSON.parse(body) as { id?: unknown; method?: string }) : {};
        res.setHeader('content-type', 'application/json');
        res.setHeader('mcp-session-id', 'upstream-session');
        if (message.method === 'initialize') res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } } }));
        else if (message.method === 'tools/list') res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { tools: [{ name: 'delete_record', inputSchema: { type: 'object' } }] } }));
        else if (message.id === undefined) { res.statusCode = 202; res.end(); }
        else res.end(JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result: { content: [{ type: 'text', text: 'done' }] } }));
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const owner = ((await (await server.api('POST', '/api/v1/humans', { email: 'o@example.com', displayName: 'O' })).json()) as { id: string }).id;
    const agent = ((await (await server.api('POST', '/api/v1/agents', { name: 'a', ownerId: owner })).json()) as { id: string }).id;
    const client = (await (await server.api('POST', `/api/v1/agents/${agent}/clients`, { auth: 'client_secret_basic' })).json()) as { client_id: string; client_secret: string };
    expect((await server.api('POST', '/api/v1/mcp/servers', { name: 'raw', url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/mcp` })).status).toBe(201);
    const tokenResponse = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.services.config.publicUrl}/mcp/raw` }).toString(),
    });
    accessToken = ((await tokenResponse.json()) as { access_token: string }).access_token;
  });
  afterAll(async () => {
    await server.stop();
    await new Promise((resolve) => raw.close(resolve));
  });

  it('MCP-BASE: a tools/call with a null id, or sent as a notification, never reaches the upstream undecided (no policy: default deny)', async () => {
    const post = (body: unknown, session?: string) =>
      fetch(`${server.url}/mcp/raw`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(session && { 'mcp-session-id': session }) }, body: JSON.stringify(body) });
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(init.status).toBe(200);
    const session = init.headers.get('mcp-session-id')!;
    await init.text();
    const call = { method: 'tools/call', params: { name: 'delete_record', arguments: { id: 7 } } };
    for (const message of [{ jsonrpc: '2.0', id: null, ...call }, { jsonrpc: '2.0', ...call }, [{ jsonrpc: '2.0', ...call }]]) {
      const response = await post(message, session);
      expect(response.status).toBeGreaterThanOrEqual(200);
      await response.text();
    }
    // The properly numbered call is denied too (default deny), so nothing named tools/call arrives at all.
    await (await post({ jsonrpc: '2.0', id: 2, ...call }, session)).text();
    expect(received.filter((body) => body.includes('tools/call'))).toEqual([]);
  });
});

describe('security review: a short-lived token cannot buy a long-lived certificate', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server.stop());

  it('self-service certificates never outlive MANDATE_CERTIFICATE_TTL, whatever ttlSeconds asks', async () => {
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    const owner = ((await (await server.api('POST', '/api/v1/humans', { email: 'c@example.com', displayName: 'C' })).json()) as { id: string }).id;
    const agent = ((await (await server.api('POST', '/api/v1/agents', { name: 'cert-agent', ownerId: owner })).json()) as { id: string }).id;
    const client = (await (await server.api('POST', `/api/v1/agents/${agent}/clients`, { auth: 'client_secret_basic' })).json()) as { client_id: string; client_secret: string };
    const tokenResponse = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: server.services.config.publicUrl }).toString(),
    });
    const accessToken = ((await tokenResponse.json()) as { access_token: string }).access_token;
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    const response = await fetch(`${server.url}/oauth/certificates`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ csr: csr.toString('pem'), ttlSeconds: 86_400 }) });
    expect(response.status).toBe(201);
    const issued = (await response.json()) as { notBefore: string; notAfter: string };
    expect(Date.parse(issued.notAfter) - Date.parse(issued.notBefore)).toBeLessThanOrEqual(3600_000 + 120_000);
  });
});

describe('security review: gateway settings changes are accountable', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server.stop());

  it('the audit record of a settings change names the old and new values (switching redaction off is visible)', async () => {
    expect((await server.api('PATCH', '/api/v1/mcp/settings', { redactPaths: [], approvalTimeoutSeconds: 30 })).status).toBe(200);
    const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; details: Record<string, unknown> }[] };
    const record = audit.items.filter((r) => r.action === 'mcp.settings.update').at(-1)!;
    expect(record.details).toMatchObject({ changed: expect.arrayContaining(['redactPaths', 'approvalTimeoutSeconds']), to: { redactPaths: [], approvalTimeoutSeconds: 30 }, from: { approvalTimeoutSeconds: 120, redactPaths: expect.arrayContaining(['**.password']) } });
  });

  it('a patch of one setting leaves the others alone (it used to reset redaction paths and limits to their defaults)', async () => {
    expect((await server.api('PATCH', '/api/v1/mcp/settings', { redactPaths: ['**.ssn'], callsPerMinute: 5 })).status).toBe(200);
    const patched = (await (await server.api('PATCH', '/api/v1/mcp/settings', { sessionIdleSeconds: 600 })).json()) as Record<string, unknown>;
    expect(patched).toMatchObject({ redactPaths: ['**.ssn'], callsPerMinute: 5, sessionIdleSeconds: 600 });
  });

  it('an audit sink URL carrying credentials is refused (they would be listed and recorded)', async () => {
    const response = await server.api('POST', '/api/v1/audit/sinks', { name: 'siem', url: 'http://user:pass@127.0.0.1:9/ingest' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('AUDIT_SINK_URL_INSECURE');
  });

  it('an approval webhook URL carrying credentials is refused (they would be shown and recorded)', async () => {
    const response = await server.api('PATCH', '/api/v1/mcp/settings', { approvalWebhookUrl: 'http://user:pass@127.0.0.1:9/hook' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe('GATEWAY_WEBHOOK_INSECURE');
  });
});

describe('security review: the consent page shows everything the user grants', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server.stop());

  it('an authorization request naming two resources lists both on the consent page', async () => {
    const issuer = server.services.config.publicUrl;
    const user = ((await (await server.api('POST', '/api/v1/humans', { email: 'u@example.com', displayName: 'U' })).json()) as { id: string }).id;
    expect((await server.api('POST', `/api/v1/humans/${user}/password`, { password: 'correct horse battery staple' })).status).toBe(204);
    const agent = ((await (await server.api('POST', '/api/v1/agents', { name: 'assistant', ownerId: user })).json()) as { id: string }).id;
    const client = (await (await server.api('POST', `/api/v1/agents/${agent}/clients`, { auth: 'client_secret_basic', scopes: ['tickets:read'], redirectUris: ['https://assistant.example/callback'] })).json()) as { client_id: string };
    const authorize = new URL(`${issuer}/oauth/authorize`);
    for (const [k, v] of [['client_id', client.client_id], ['response_type', 'code'], ['redirect_uri', 'https://assistant.example/callback'], ['scope', 'openid tickets:read'], ['code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'], ['code_challenge_method', 'S256'], ['resource', 'https://shown.example/api'], ['resource', 'https://hidden.example/payments']]) authorize.searchParams.append(k!, v!);
    const jar = new CookieJar();
    let url = authorize.href;
    let consentHtml = '';
    for (let hop = 0; hop < 10 && !consentHtml; hop++) {
      const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
      jar.store(response);
      if (response.status === 302 || response.status === 303) {
        url = new URL(response.headers.get('location')!, url).href;
        continue;
      }
      const html = await response.text();
      expect(response.status, html.slice(0, 300)).toBe(200);
      if (!html.includes('name="password"')) {
        consentHtml = html;
        break;
      }
      const action = /action="([^"]+login)"/.exec(html)![1]!;
      const posted = await fetch(new URL(action, issuer), { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin: new URL(issuer).origin }, body: new URLSearchParams({ csrf: csrfOf(html), email: 'u@example.com', password: 'correct horse battery staple' }) });
      jar.store(posted);
      expect(posted.status).toBe(303);
      url = new URL(posted.headers.get('location')!, issuer).href;
    }
    expect(consentHtml).toContain('https://shown.example/api');
    expect(consentHtml).toContain('https://hidden.example/payments');
  });
});
