import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream, type DemoUpstream } from '../src/gateway/index.ts';
import { adminJson, browserLogin, discover } from './oauth-support.ts';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Hardening finding 6: suspension, the kill switch (by agent, owner, tag, model provider), offboarding and
 * decommissioning kill every token issued before them. After the resume those tokens stay refused by the
 * gateway (a real MCP SDK client), by introspection and by `verifyAccessToken`; new tokens work at once.
 */
describe.each(BACKENDS)('tokens issued before a suspension stay dead after the resume (%s)', (backend) => {
  let server: TestServer;
  let upstream: DemoUpstream;
  let issuer: string;
  let gatewayResource: string;
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer(backend);
    upstream = await startDemoUpstream();
    issuer = server.services.config.publicUrl;
    gatewayResource = `${issuer}/mcp/demo`;
    await adminJson(server, 'POST', '/api/v1/mcp/servers', { name: 'demo', url: upstream.url });
    await adminJson(server, 'PUT', '/api/v1/policies', { cedar: 'permit (principal is Agent, action == Action::"tools/call", resource in McpServer::"demo");' });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await upstream?.close();
  });

  interface TestAgent {
    id: string;
    ownerId: string;
    tag: string;
    provider: string;
    clientId: string;
    secret: string;
  }

  async function human(): Promise<string> {
    return (await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: `tnb-${backend}-${++n}@example.com`, displayName: `Owner ${n}` })).id;
  }

  /** A fresh agent with its own owner, tag and model provider, so every selector covers it alone. */
  async function newAgent(extra: { redirectUris?: string[]; scopes?: string[] } = {}): Promise<TestAgent> {
    const ownerId = await human();
    const tag = `tag-${++n}`;
    const provider = `provider-${n}`;
    const { id } = await adminJson<{ id: string }>(server, 'POST', '/api/v1/agents', { name: `agent-${n}`, ownerId, tags: [tag], modelProvider: provider });
    const created = await adminJson<{ client_id: string; client_secret: string }>(server, 'POST', `/api/v1/agents/${id}/clients`, { auth: 'client_secret_basic', ...extra });
    return { id, ownerId, tag, provider, clientId: created.client_id, secret: created.client_secret };
  }

  async function tokenResponse(agent: TestAgent, resource = gatewayResource): Promise<Response> {
    return fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(agent.clientId)}:${encodeURIComponent(agent.secret)}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
    });
  }

  async function token(agent: TestAgent, resource = gatewayResource): Promise<string> {
    const body = (await (await tokenResponse(agent, resource)).json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  /** Whether the gateway lets a real MCP client connect and call a tool with this token. */
  async function gatewayAccepts(accessToken: string): Promise<boolean> {
    const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
    const mcp = new Client({ name: 'tnb-agent', version: '1' });
    const before = upstream.calls.length;
    try {
      await mcp.connect(transport);
      await mcp.callTool({ name: 'echo', arguments: { message: 'hello' } });
      return upstream.calls.length > before;
    } catch {
      return false;
    } finally {
      await mcp.close().catch(() => undefined);
    }
  }

  async function introspect(accessToken: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${server.url}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: accessToken }) });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  }

  /** `ok`, or the TokenError code `verifyAccessToken` refuses the token with. */
  async function verify(accessToken: string): Promise<string> {
    try {
      await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${accessToken}`, dpop: undefined, method: 'POST', url: gatewayResource }, { audience: gatewayResource });
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? String(error);
    }
  }

  async function expectRefused(accessToken: string): Promise<void> {
    expect(await verify(accessToken)).toBe('TOKEN_REVOKED');
    expect(await introspect(accessToken)).toEqual({ active: false });
    expect(await gatewayAccepts(accessToken)).toBe(false);
  }

  async function expectAccepted(accessToken: string): Promise<void> {
    expect(await verify(accessToken)).toBe('ok');
    expect(await introspect(accessToken)).toMatchObject({ active: true });
    expect(await gatewayAccepts(accessToken)).toBe(true);
  }

  const resume = (agent: TestAgent) => adminJson(server, 'POST', `/api/v1/agents/${agent.id}/resume`, {});
  const kill = async (selector: Record<string, unknown>, agent: TestAgent) => {
    const result = await adminJson<{ suspended: string[] }>(server, 'POST', '/api/v1/mcp/kill', selector);
    expect(result.suspended).toEqual([agent.id]);
  };

  const stops: [string, (agent: TestAgent) => Promise<void>, (agent: TestAgent) => Promise<unknown>][] = [
    ['suspend → resume', (a) => adminJson(server, 'POST', `/api/v1/agents/${a.id}/suspend`, { reason: 'test' }).then(() => undefined), resume],
    ['kill switch by agent → resume', (a) => kill({ agentId: a.id }, a), resume],
    ['kill switch by owner → resume', (a) => kill({ ownerId: a.ownerId }, a), resume],
    ['kill switch by tag → resume', (a) => kill({ tag: a.tag }, a), resume],
    ['kill switch by model provider → resume', (a) => kill({ modelProvider: a.provider }, a), resume],
    [
      'owner offboarded → handover to a new owner → resume',
      async (a) => {
        const successor = await human();
        const { handovers } = await adminJson<{ handovers: { id: string }[] }>(server, 'POST', `/api/v1/humans/${a.ownerId}/offboard`, { transferTo: successor });
        await adminJson(server, 'POST', `/api/v1/handovers/${handovers[0]!.id}/resolve`, { action: 'transfer' });
      },
      resume,
    ],
  ];

  it.each(stops)('%s: a token issued before is refused by the gateway, introspection and the verifier; one issued after works', async (_name, stop, lift) => {
    const agent = await newAgent();
    const old = await token(agent);
    await expectAccepted(old);
    // Issued in the same second as the suspension (iat has whole seconds): dead too.
    const justBefore = await token(agent);
    await stop(agent);
    await lift(agent);
    // The resume is done and every cache dropped: the tokens from before the suspension stay dead.
    await expectRefused(old);
    await expectRefused(justBefore);
    const fresh = await token(agent);
    await expectAccepted(fresh);
  });

  it('issuance stamps no token for a suspended identity, and after the resume never one earlier than the suspension', async () => {
    const agent = await newAgent();
    const oauth = server.services.oauth;
    expect(await oauth.issuedAtMs([agent.id])).toBeGreaterThan(0);
    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/suspend`, { reason: 'test' });
    // A token whose client was checked just before the suspension committed is not issued at all.
    expect(await oauth.issuedAtMs([agent.id])).toBeNull();
    await resume(agent);
    const { tokensNotBefore } = await oauth.status.record(agent.id);
    expect(await oauth.issuedAtMs([agent.id])).toBeGreaterThanOrEqual(tokensNotBefore!);
    const fresh = await token(agent);
    expect(JSON.parse(Buffer.from(fresh.split('.')[1]!, 'base64url').toString()).iat_ms).toBeGreaterThanOrEqual(tokensNotBefore!);
  });

  it('decommissioning: a token issued before is refused everywhere, and no new one is issued', async () => {
    const agent = await newAgent();
    const old = await token(agent);
    await expectAccepted(old);
    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/decommission`, {});
    expect(await verify(old)).toBe('IDENTITY_DECOMMISSIONED');
    expect(await introspect(old)).toEqual({ active: false });
    expect(await gatewayAccepts(old)).toBe(false);
    expect((await tokenResponse(agent)).status).toBe(401);
  });

  it('token exchange refuses a subject token and an actor token issued before the kill; fresh ones exchange', async () => {
    const user = await adminJson<{ id: string; email: string }>(server, 'POST', '/api/v1/humans', { email: `tnb-user-${backend}@example.com`, displayName: 'User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: 'correct horse battery staple' }, [204]);
    const agent = await newAgent({ scopes: ['tickets:read'], redirectUris: ['https://assistant.example/callback'] });
    const config = await discover(issuer, agent.clientId, client.ClientSecretBasic(agent.secret), { redirect_uris: ['https://assistant.example/callback'] });
    // The user's token, held by the agent's client: it names the agent (identity_id).
    const userToken = async () => {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://assistant.example/callback', scope: 'openid tickets:read', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer, state });
      const callback = await browserLogin(url, { email: user.email, password: 'correct horse battery staple' });
      return (await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: issuer })).access_token;
    };
    const exchange = (subject: string, actor: string) =>
      client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        actor_token: actor,
        actor_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: gatewayResource,
      });
    const oldSubject = await userToken();
    const oldActor = await token(agent, issuer);
    const before = await exchange(oldSubject, oldActor);
    expect(await verify(before.access_token)).toBe('ok');

    await kill({ agentId: agent.id }, agent);
    await resume(agent);
    // The delegated token minted before the kill is dead like the agent's own.
    expect(await verify(before.access_token)).toBe('TOKEN_REVOKED');
    const freshActor = await token(agent, issuer);
    await expect(exchange(oldSubject, freshActor)).rejects.toMatchObject({ error: 'invalid_grant' });
    const freshSubject = await userToken();
    await expect(exchange(freshSubject, oldActor)).rejects.toMatchObject({ error: 'invalid_grant' });
    const after = await exchange(freshSubject, freshActor);
    expect(await verify(after.access_token)).toBe('ok');
  });

  it('a refresh token issued before the kill is refused after the resume; one issued after works', async () => {
    const user = await adminJson<{ id: string; email: string }>(server, 'POST', '/api/v1/humans', { email: `tnb-refresh-${backend}@example.com`, displayName: 'User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: 'correct horse battery staple' }, [204]);
    const agent = await newAgent({ scopes: ['tickets:read'], redirectUris: ['https://assistant.example/callback'] });
    const config = await discover(issuer, agent.clientId, client.ClientSecretBasic(agent.secret), { redirect_uris: ['https://assistant.example/callback'] });
    const signIn = async () => {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://assistant.example/callback', scope: 'openid offline_access tickets:read', prompt: 'consent', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer, state });
      const callback = await browserLogin(url, { email: user.email, password: 'correct horse battery staple' });
      const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: issuer });
      expect(tokens.refresh_token).toBeTruthy();
      return tokens.refresh_token!;
    };
    const old = await signIn();
    await kill({ agentId: agent.id }, agent);
    await resume(agent);
    await expect(client.refreshTokenGrant(config, old, { resource: issuer })).rejects.toMatchObject({ error: 'invalid_grant' });
    const fresh = await signIn();
    const refreshed = await client.refreshTokenGrant(config, fresh, { resource: issuer });
    expect((await introspect(refreshed.access_token)).active).toBe(true);
  });
});
