/**
 * Review 5, second reader: what the hardening fixes still let through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStoredChain } from '../src/audit/index.ts';
import { agentSession } from './support/gateway-agent.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';
import * as client from 'openid-client';
import { browserLogin, createAgent, createClient, discover } from './oauth-support.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe('policy validation covers template links', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await server?.stop();
  });

  // The link is what names the agent: with a typo in its entity type the forbid silently never matches
  // and the agent it was meant to stop keeps every permission the permit gives it.
  const cedar = 'permit (principal, action, resource);\nforbid (principal == ?principal, action, resource);\n';
  const link = (type: string) => [{ templateId: 'policy1', newId: 'block-agent', values: { '?principal': { type, id: 'agt_1' } } }];

  it('PUT /api/v1/policies refuses a link to an entity type the schema does not know (400 POLICY_INVALID); force applies it, audited', async () => {
    const refused = await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agnet') });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { code: string; errors: { message: string; policyId: string }[] };
    expect(body.code).toBe('POLICY_INVALID');
    expect(body.errors.map((e) => e.message).join('\n')).toContain('Agnet');
    expect(await (await server.api('POST', '/api/v1/policies/validate', { cedar, links: link('Agnet') })).json()).toMatchObject({ valid: false });
    expect((await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agent') })).status).toBe(200);
    const forced = await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agnet'), force: true });
    expect(forced.status).toBe(200);
    const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; details: Record<string, unknown> }[] };
    expect(audit.items.filter((e) => e.action === 'policy.apply').at(-1)!.details).toMatchObject({ forced: true, validationErrors: 1 });
  });

  // A version applied with force (or stored before validation existed) came back with a plain activate:
  // neither refused nor audited as forced.
  it('re-activating a version that does not validate needs force too, and is audited as forced', async () => {
    const invalid = (await (await server.api('PUT', '/api/v1/policies', { cedar: 'forbid (principal == Agnet::"agt_1", action, resource);\npermit (principal, action, resource);', force: true })).json()) as { version: number };
    expect((await server.api('PUT', '/api/v1/policies', { cedar: 'permit (principal, action, resource);' })).status).toBe(200);
    const refused = await server.api('POST', `/api/v1/policies/versions/${invalid.version}/activate`);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: 'POLICY_INVALID' });
    const forced = await server.api('POST', `/api/v1/policies/versions/${invalid.version}/activate`, { force: true });
    expect(forced.status).toBe(200);
    const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; details: Record<string, unknown> }[] };
    expect(audit.items.filter((e) => e.action === 'policy.activate').at(-1)!.details).toMatchObject({ version: invalid.version, forced: true });
  });
});

describe('SCIM query strings with U+0000 on PostgreSQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
  });
  afterAll(async () => {
    await server?.stop();
  });

  // readQuery refuses NUL on the admin API; the SCIM routes read their query themselves, and a filter's
  // value went into SQL, where PostgreSQL text cannot hold it: 500 INTERNAL.
  it.each([
    ['/Users', `filter=${encodeURIComponent('userName eq "a\u0000"')}`, 'invalidFilter'],
    ['/Groups', `filter=${encodeURIComponent('displayName eq "\u0000"')}`, 'invalidFilter'],
    ['/Users', 'attributes=userName%00', 'invalidValue'],
  ])('GET %s?%s is 400 %s, not 500', async (path, query, scimType) => {
    const response = await fetch(`${server.url}/scim/v2${path}?${query}`, { headers: { authorization: `Bearer ${server.services.config.scimToken!}` } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ status: '400', scimType });
  });
});

describe('OAuth identifiers with U+0000 on PostgreSQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
  });
  afterAll(async () => {
    await server?.stop();
  });

  const form = (body: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body).toString(),
  });
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsignedJwt = (claims: Record<string, unknown>) => `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64(claims)}.${'A'.repeat(86)}`;
  const basic = (id: string) => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:x`).toString('base64')}` });

  // Anyone on the network: a client id, refresh token or code with a NUL went into a PostgreSQL query,
  // which cannot hold it, and the authorization server answered 500 server_error (or INTERNAL).
  it.each<[string, string, RequestInit | undefined]>([
    ['token (client_id)', '/oauth/token', form({ grant_type: 'client_credentials', client_id: 'a\u0000', client_secret: 'x' })],
    ['token (refresh_token)', '/oauth/token', form({ grant_type: 'refresh_token', refresh_token: 'a\u0000b', client_id: 'x\u0000' })],
    ['token exchange', '/oauth/token', form({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'a', subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', client_id: 'a\u0000' })],
    ['introspection (Basic)', '/oauth/introspect', form({ token: 'a\u0000b' }, basic('a\u0000'))],
    ['introspection (client assertion, not yet verified)', '/oauth/introspect', form({ token: 'x', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: unsignedJwt({ iss: 'a\u0000', sub: 'a\u0000' }) })],
    ['jwt-bearer grant (federation, issuer not yet verified)', '/oauth/token', form({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: unsignedJwt({ iss: 'https://a\u0000.example', sub: 'x\u0000', aud: 'x', exp: 9e9 }) })],
    ['token (client assertion)', '/oauth/token', form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: unsignedJwt({ iss: 'a\u0000', sub: 'a\u0000', aud: 'x', exp: 9e9, jti: 'j\u0000' }) })],
    ['pushed authorization request', '/oauth/par', form({ client_id: 'a\u0000', response_type: 'code' })],
    ['authorize', `/oauth/authorize?client_id=a%00&response_type=code&redirect_uri=https://x.example/cb&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, undefined],
  ])('%s: a 4xx, not a 500', async (_name, path, init) => {
    const response = await fetch(`${server.url}${path}`, { redirect: 'manual', ...init });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  // The login form: anyone who starts an authorization request gets a form whose e-mail went into a query.
  it('a login with U+0000 in the e-mail is refused like a wrong password, not a 500', async () => {
    const issuer = server.services.config.publicUrl;
    const owner = await server.api('POST', '/api/v1/humans', { email: 'nul-owner@example.com', displayName: 'Owner' });
    const agent = await createAgent(server, ((await owner.json()) as { id: string }).id, 'nul-login');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', redirectUris: ['https://nul.example/callback'] });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret!), { redirect_uris: ['https://nul.example/callback'] });
    const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://nul.example/callback', scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256', resource: issuer, state: client.randomState() });
    const failure = await browserLogin(url, { email: 'a\u0000@example.com', password: 'x' }).then(
      () => 'logged in',
      (error: Error) => error.message,
    );
    expect(failure).not.toMatch(/→ 5\d\d/);
  });
});

describe('gateway targets with U+0000 on PostgreSQL', () => {
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startMinimalUpstream>>;
  let agent: Awaited<ReturnType<typeof agentSession>>;
  let calls = 0;
  beforeAll(async () => {
    server = await startTestServer('postgres');
    upstream = await startMinimalUpstream({ answerCall: () => ((calls += 1), false) });
    agent = await agentSession(server, {
      name: 'nul-target',
      upstreamUrl: upstream.url,
      cedar: (id) => `@approval("owner")\npermit (principal == Agent::"${id}", action == Action::"resources/read", resource);`,
    });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
  });

  const mcp = (body: string) =>
    fetch(`${server.url}/mcp/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.accessToken}`, 'mcp-session-id': agent.sessionId, 'mcp-protocol-version': '2025-06-18', 'content-type': 'application/json', accept: 'application/json' },
      body,
    });

  // Resource URIs are not matched against the registry (tool and prompt names are): a URI with a NUL
  // reached the approval request's row, which PostgreSQL cannot store, and the agent got a 500.
  it.each([
    ['resources/read', `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a\\u0000b"}}`],
    ['a resource completion', `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///\\u0000"},"argument":{"name":"a","value":"b"}}}`],
  ])('%s with a NUL in its URI is invalid params, forwarded nowhere, no approval asked', async (_what, body) => {
    const response = await mcp(body);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id: 1, error: { code: -32602 } });
    expect(calls).toBe(0);
    expect(await server.services.store.db.selectFrom('mcp_approvals').select('id').execute()).toEqual([]);
    await server.services.gateway.flushAudit();
    expect(await verifyStoredChain(server.services.store)).toMatchObject({ ok: true });
  });
});
