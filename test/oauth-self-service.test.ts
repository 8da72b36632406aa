import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, auditRows, browserLogin, createAgent, createClient, discover } from './oauth-support.ts';

const PASSWORD = 'correct horse battery staple';

/**
 * `/oauth/delegations` is the user's own: a token an agent's client holds for the user (authorization code
 * flow) must not list or revoke the user's grants to other agents. Self-service needs a client that belongs
 * to no agent or workload and the `mandate:delegations` scope, which agent clients cannot get.
 */
describe.each(BACKENDS)('delegation self-service only with the user\'s own client (%s)', (backend) => {
  let server: TestServer;
  let issuer: string;
  let user: { id: string; email: string };
  let owner: { id: string };

  beforeAll(async () => {
    process.env.MANDATE_OAUTH_DYNAMIC_REGISTRATION = 'open';
    server = await startTestServer(backend);
    delete process.env.MANDATE_OAUTH_DYNAMIC_REGISTRATION;
    issuer = server.services.config.publicUrl;
    owner = await adminJson(server, 'POST', '/api/v1/humans', { email: `self-owner-${backend}@example.com`, displayName: 'Owner' });
    user = await adminJson(server, 'POST', '/api/v1/humans', { email: `self-user-${backend}@example.com`, displayName: 'User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: PASSWORD }, [204]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** The user signs in through `config`'s client (authorization code + PKCE) and gets a token for the issuer. */
  const userToken = async (config: client.Configuration, redirectUri: string, scope: string) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer, state });
    const callback = await browserLogin(url, { email: user.email, password: PASSWORD });
    return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: issuer });
  };

  /** A public client of the user's own (RFC 7591 dynamic registration: no agent or workload behind it). */
  const ownClient = async (name: string) => {
    const redirectUri = `https://${name}.example/callback`;
    const registered = await fetch(`${issuer}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] }),
    });
    expect(registered.status).toBe(201);
    const { client_id } = (await registered.json()) as { client_id: string };
    return { config: await discover(issuer, client_id, client.None(), { redirect_uris: [redirectUri] }), redirectUri };
  };

  const call = (token: string, method = 'GET', path = '/oauth/delegations') => fetch(`${issuer}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

  it('an agent\'s client cannot list or revoke the user\'s delegations with the user\'s token; the user\'s own client with mandate:delegations can', async () => {
    const agentA = await createAgent(server, owner.id, 'assistant');
    const clientA = await createClient(server, agentA.id, { auth: 'client_secret_basic', scopes: ['tickets:read'], redirectUris: ['https://assistant.example/callback'] });
    const configA = await discover(issuer, clientA.client_id, client.ClientSecretBasic(clientA.client_secret!), { redirect_uris: ['https://assistant.example/callback'] });
    const agentB = await createAgent(server, owner.id, 'other-agent');
    const grantB = await adminJson<{ id: string }>(server, 'POST', `/api/v1/humans/${user.id}/delegations`, { identityId: agentB.id, scopes: ['tickets:read'] });

    // The finding: agent A holds an authorization-code token for the user (sub = user, no act).
    const held = await userToken(configA, 'https://assistant.example/callback', 'openid tickets:read mandate:delegations');
    expect(held.scope?.split(' ')).not.toContain('mandate:delegations');
    for (const [method, path] of [['GET', '/oauth/delegations'], ['DELETE', `/oauth/delegations/${grantB.id}`]] as const) {
      const refused = await call(held.access_token, method, path);
      expect(refused.status, `${method} ${path}`).toBe(403);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await refused.json()).toMatchObject({ code: 'DELEGATION_SELF_SERVICE_FORBIDDEN', reason: 'agent_client' });
    }
    const stillLive = await adminJson<{ items: { id: string }[] }>(server, 'GET', `/api/v1/humans/${user.id}/delegations`);
    expect(stillLive.items.map((d) => d.id)).toContain(grantB.id);
    expect(await auditRows(server, 'delegation.self_service', (r) => r.outcome === 'deny' && r.actor === `client:${clientA.client_id}` && r.details.reason === 'agent_client')).not.toHaveLength(0);

    // The agent's own client-credentials token names no user.
    const own = await client.clientCredentialsGrant(configA, { resource: issuer });
    expect(await (await call(own.access_token)).json()).toMatchObject({ code: 'DELEGATION_SELF_SERVICE_FORBIDDEN', reason: 'not_a_user' });

    // A client of the user's own, without the scope: insufficient_scope, naming the scope that would do (RFC 6750 §3.1).
    const portal = await ownClient('portal');
    const plain = await userToken(portal.config, portal.redirectUri, 'openid');
    const insufficient = await call(plain.access_token);
    expect(insufficient.status).toBe(403);
    expect(((await insufficient.json()) as { code: string }).code).toBe('TOKEN_SCOPE_INSUFFICIENT');
    expect(insufficient.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="mandate:delegations"/);

    // With the scope the user consented to: lists both grants, revokes B's.
    const mine = await userToken(portal.config, portal.redirectUri, 'openid mandate:delegations');
    const listed = await call(mine.access_token);
    expect(listed.status).toBe(200);
    const items = ((await listed.json()) as { items: { id: string; identityId: string }[] }).items;
    expect(items.map((d) => d.identityId)).toEqual(expect.arrayContaining([agentA.id, agentB.id]));
    const revoked = await call(mine.access_token, 'DELETE', `/oauth/delegations/${grantB.id}`);
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { revokedAt: string | null }).revokedAt).not.toBeNull();
    expect(await auditRows(server, 'delegation.revoke', (r) => r.target === grantB.id && r.actor === `human:${user.id}`)).not.toHaveLength(0);
  });

  it('the consent page says what mandate:delegations allows', async () => {
    const portal = await ownClient('consent-portal');
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(portal.config, { redirect_uri: portal.redirectUri, scope: 'openid mandate:delegations', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer, state: client.randomState() });
    let consentHtml = '';
    const originalFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) => {
      const response = await originalFetch(input, init);
      if (String(input).includes('/oauth/interaction/') && (init?.method ?? 'GET') === 'GET') {
        const html = await response.clone().text();
        if (html.includes('name="decision"')) consentHtml = html;
      }
      return response;
    };
    try {
      await browserLogin(url, { email: user.email, password: PASSWORD }, 'deny');
    } finally {
      globalThis.fetch = originalFetch;
    }
    expect(consentHtml).toContain('<code>mandate:delegations</code>: see and revoke the access you have given to agents');
  });

  it('agent and workload clients cannot be given mandate:delegations; one stored before it was reserved never gets it', async () => {
    for (const kind of ['agent', 'workload'] as const) {
      const identity = await createAgent(server, owner.id, `reserved-${kind}`, kind);
      const response = await server.api('POST', `/api/v1/${kind}s/${identity.id}/clients`, { auth: 'client_secret_basic', scopes: ['tickets:read', 'mandate:delegations'] });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await response.json()).toMatchObject({ code: 'CLIENT_SCOPE_RESERVED', scope: 'mandate:delegations' });
    }

    const legacyAgent = await createAgent(server, owner.id, 'legacy-assistant');
    const legacy = await createClient(server, legacyAgent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'], redirectUris: ['https://legacy.example/callback'] });
    // As if the client had been created before the scope was reserved.
    await server.services.store.db.updateTable('oauth_clients').set({ scopes: 'tickets:read mandate:delegations' }).where('client_id', '=', legacy.client_id).execute();
    const config = await discover(issuer, legacy.client_id, client.ClientSecretBasic(legacy.client_secret!), { redirect_uris: ['https://legacy.example/callback'] });
    const held = await userToken(config, 'https://legacy.example/callback', 'openid tickets:read mandate:delegations');
    expect(held.scope?.split(' ')).not.toContain('mandate:delegations');
    expect(await (await call(held.access_token)).json()).toMatchObject({ code: 'DELEGATION_SELF_SERVICE_FORBIDDEN', reason: 'agent_client' });
  });
});
