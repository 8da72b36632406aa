import type { webcrypto } from 'node:crypto';
import { generate as totpCode } from 'otplib';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, auditRows, browserLogin, createAgent, createClient, discover, dpopProof, expectOAuthError } from './oauth-support.ts';

const RESOURCE = 'https://tickets.example/api';

describe.each(BACKENDS)('OAuth authorization server end to end (%s)', (backend) => {
  let server: TestServer;
  let issuer: string;
  let owner: { id: string; email: string };

  beforeAll(async () => {
    server = await startTestServer(backend);
    issuer = server.services.config.publicUrl;
    owner = await adminJson(server, 'POST', '/api/v1/humans', { email: `owner-${backend}@example.com`, displayName: 'Owner' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const tokenInfo = (token: string, init: RequestInit = {}) => fetch(`${issuer}/oauth/token-info`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

  it('RFC8414-3 serves authorization server metadata at both well-known locations, with the issuer as base URL', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const response = await fetch(`${issuer}${path}`);
      expect(response.status).toBe(200);
      const metadata = (await response.json()) as Record<string, unknown>;
      expect(metadata.issuer).toBe(issuer);
      expect(metadata.token_endpoint).toMatch(/\/oauth\/token$/);
      expect(metadata.introspection_endpoint).toBe(`${issuer}/oauth/introspect`);
      expect(metadata.revocation_endpoint).toBe(`${issuer}/oauth/revoke`);
      expect(metadata.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'authorization_code', 'urn:ietf:params:oauth:grant-type:token-exchange']));
      expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
      expect(metadata.dpop_signing_alg_values_supported).toBeDefined();
    }
    const config = await discover(issuer, 'x', client.None());
    expect(config.serverMetadata().issuer).toBe(issuer);
    const jwks = (await (await fetch(`${issuer}/oauth/jwks`)).json()) as { keys: { kid: string; alg: string; d?: string }[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys.every((k) => k.alg === 'RS256' && k.d === undefined)).toBe(true);
  });

  it('RFC9728 serves protected resource metadata for Mandate API', async () => {
    const metadata = (await (await fetch(`${issuer}/.well-known/oauth-protected-resource/api/v1`)).json()) as Record<string, unknown>;
    expect(metadata.resource).toBe(`${issuer}/api/v1`);
    expect(metadata.authorization_servers).toEqual([issuer]);
  });

  it('client credentials with client_secret_basic: secret shown once and stored hashed; RFC9068 JWT bound to the resource (RFC8707), 5-minute default', async () => {
    const agent = await createAgent(server, owner.id, 'basic-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read', 'tickets:write'] });
    expect(created.client_secret).toMatch(/^mcs_/);
    const row = await server.services.store.db.selectFrom('oauth_clients').selectAll().where('client_id', '=', created.client_id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(created.client_secret);
    const listed = await adminJson<{ items: unknown[] }>(server, 'GET', `/api/v1/agents/${agent.id}/clients`);
    expect(JSON.stringify(listed)).not.toContain(created.client_secret);

    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const token = await client.clientCredentialsGrant(config, { scope: 'tickets:read admin', resource: RESOURCE });
    expect(token.expires_in).toBe(300);
    expect(token.scope).toBe('tickets:read');
    const [header, payload] = token.access_token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
    expect(header!.typ).toBe('at+jwt');
    expect(header!.alg).toBe('RS256');
    expect(payload).toMatchObject({ iss: issuer, aud: RESOURCE, sub: agent.id, client_id: created.client_id, identity_id: agent.id });

    const verified = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${token.access_token}`, dpop: undefined, method: 'GET', url: RESOURCE }, { audience: RESOURCE });
    expect(verified).toMatchObject({ subject: agent.id, identityId: agent.id, clientId: created.client_id, actChain: [], userId: null, scopes: ['tickets:read'] });

    const introspection = await client.tokenIntrospection(config, token.access_token);
    expect(introspection).toMatchObject({ active: true, client_id: created.client_id, sub: agent.id, aud: RESOURCE });

    await expectOAuthError(discover(issuer, created.client_id, client.ClientSecretBasic('wrong')).then((c) => client.clientCredentialsGrant(c, { resource: RESOURCE })), 'invalid_client');
  });

  it('client credentials with private_key_jwt (RFC7523)', async () => {
    const agent = await createAgent(server, owner.id, 'pkjwt-bot');
    const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), alg: 'ES256', use: 'sig', kid: 'k1' };
    const created = await createClient(server, agent.id, { auth: 'private_key_jwt', jwks: { keys: [jwk] }, scopes: ['tickets:read'] });
    expect(created.client_secret).toBeUndefined();
    const config = await discover(issuer, created.client_id, client.PrivateKeyJwt({ key: privateKey, kid: 'k1' }));
    const token = await client.clientCredentialsGrant(config, { scope: 'tickets:read', resource: RESOURCE });
    const verified = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${token.access_token}`, dpop: undefined, method: 'GET', url: RESOURCE }, { audience: RESOURCE });
    expect(verified.identityId).toBe(agent.id);
    // RFC7523-3: a client assertion is single-use (jti) — introspection with a replayed assertion fails.
    const introspection = await client.tokenIntrospection(config, token.access_token);
    expect(introspection.active).toBe(true);
  });

  it('RFC9449 DPoP-bound token: accepted with a valid proof, refused with a replayed or a foreign proof (denial audited)', async () => {
    const agent = await createAgent(server, owner.id, 'dpop-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'], dpop: true });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    await expect(client.clientCredentialsGrant(config, { resource: issuer })).rejects.toMatchObject({ error: 'invalid_grant' });
    const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const token = await client.clientCredentialsGrant(config, { resource: issuer, scope: 'tickets:read' }, { DPoP: dpop });
    expect(token.token_type.toLowerCase()).toBe('dpop');

    let sentProof = '';
    config[client.customFetch] = (url, options) => {
      sentProof = new Headers(options.headers).get('dpop') ?? '';
      return fetch(url, options as RequestInit);
    };
    const ok = await client.fetchProtectedResource(config, token.access_token, new URL(`${issuer}/oauth/token-info`), 'GET', undefined, undefined, { DPoP: dpop });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { cnf: { jkt: string } }).cnf.jkt).toBeTruthy();

    const replay = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `DPoP ${token.access_token}`, dpop: sentProof } });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { code: string }).code).toBe('DPOP_REPLAY');
    expect(replay.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof"/);
    expect(await auditRows(server, 'token.verify', (r) => r.details.code === 'DPOP_REPLAY')).not.toHaveLength(0);

    const thief = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as { publicKey: webcrypto.CryptoKey; privateKey: webcrypto.CryptoKey };
    const foreign = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `DPoP ${token.access_token}`, dpop: await dpopProof(thief, 'GET', `${issuer}/oauth/token-info`, token.access_token) } });
    expect(foreign.status).toBe(401);
    expect(((await foreign.json()) as { code: string }).code).toBe('DPOP_PROOF_INVALID');

    const asBearer = await tokenInfo(token.access_token);
    expect(((await asBearer.json()) as { code: string }).code).toBe('DPOP_PROOF_REQUIRED');
  });

  it('suspension makes the agent\'s live token fail introspection and verification at once, and it gets no new token', async () => {
    const agent = await createAgent(server, owner.id, 'suspend-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const token = await client.clientCredentialsGrant(config, { resource: issuer });
    expect((await tokenInfo(token.access_token)).status).toBe(200);

    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/suspend`, { reason: 'incident' });

    const admin = await fetch(`${issuer}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: token.access_token }) });
    expect(await admin.json()).toEqual({ active: false });
    const refused = await tokenInfo(token.access_token);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe('IDENTITY_SUSPENDED');
    await expectOAuthError(client.clientCredentialsGrant(config, { resource: issuer }), 'invalid_client');
    expect(await auditRows(server, 'token.issue', (r) => r.outcome === 'deny' && r.target === created.client_id)).not.toHaveLength(0);
  });

  it('RFC7662-2.1 a client whose agent is suspended or decommissioned cannot introspect (401 invalid_client); it can still revoke its own tokens', async () => {
    const agent = await createAgent(server, owner.id, 'introspect-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(created.client_id)}:${encodeURIComponent(created.client_secret!)}`).toString('base64')}`;
    const post = (path: string, token: string) => fetch(`${issuer}${path}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });
    const first = await client.clientCredentialsGrant(config, { resource: issuer });
    const second = await client.clientCredentialsGrant(config, { resource: issuer });
    expect(await (await post('/oauth/introspect', first.access_token)).json()).toMatchObject({ active: true, client_id: created.client_id });

    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/suspend`, { reason: 'incident' });
    const refused = await post('/oauth/introspect', first.access_token);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(await refused.json()).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    expect(await auditRows(server, 'token.introspect', (r) => r.outcome === 'deny' && r.actor === `client:${created.client_id}`)).not.toHaveLength(0);

    // Revoking its own token only reduces access: still allowed, and it holds after the agent is resumed.
    expect((await post('/oauth/revoke', first.access_token)).status).toBe(200);
    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/resume`, {});
    expect(((await (await tokenInfo(first.access_token)).json()) as { code: string }).code).toBe('TOKEN_REVOKED');
    // The resume does not bring back the tokens issued before the suspension: the agent needs new ones.
    expect(await (await post('/oauth/introspect', second.access_token)).json()).toEqual({ active: false });
    const third = await client.clientCredentialsGrant(config, { resource: issuer });
    expect(await (await post('/oauth/introspect', third.access_token)).json()).toMatchObject({ active: true });

    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/decommission`, {});
    expect((await post('/oauth/introspect', third.access_token)).status).toBe(401);
    expect((await post('/oauth/revoke', third.access_token)).status).toBe(200);
  });

  it('RFC7009 revocation: a revoked token is refused everywhere; a client cannot revoke another client\'s token', async () => {
    const agent = await createAgent(server, owner.id, 'revoke-bot');
    const a = await createClient(server, agent.id, { auth: 'client_secret_basic' });
    const b = await createClient(server, agent.id, { auth: 'client_secret_basic' });
    const configA = await discover(issuer, a.client_id, client.ClientSecretBasic(a.client_secret));
    const configB = await discover(issuer, b.client_id, client.ClientSecretBasic(b.client_secret));
    const token = await client.clientCredentialsGrant(configA, { resource: issuer });
    await client.tokenRevocation(configB, token.access_token);
    expect((await tokenInfo(token.access_token)).status).toBe(200);
    await client.tokenRevocation(configA, token.access_token);
    const refused = await tokenInfo(token.access_token);
    expect(((await refused.json()) as { code: string }).code).toBe('TOKEN_REVOKED');
    expect((await client.tokenIntrospection(configA, token.access_token)).active).toBe(false);
  });

  it('RFC8693 with RFC9449: a DPoP-bound subject token is exchanged only with a proof from the same key', async () => {
    const user = await adminJson<{ id: string; email: string }>(server, 'POST', '/api/v1/humans', { email: `bound-${backend}@example.com`, displayName: 'Bound User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: 'correct horse battery staple' }, [204]);
    const agent = await createAgent(server, owner.id, 'bound-assistant');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'], redirectUris: ['https://bound.example/callback'] });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret!), { redirect_uris: ['https://bound.example/callback'] });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, { redirect_uri: 'https://bound.example/callback', scope: 'openid tickets:read', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer, state });
    const callback = await browserLogin(url, { email: user.email, password: 'correct horse battery staple' });
    const holder = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    const userToken = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: issuer }, { DPoP: holder });
    expect(userToken.token_type.toLowerCase()).toBe('dpop');
    const actor = await client.clientCredentialsGrant(config, { resource: issuer, scope: 'tickets:read' });
    const params = { subject_token: userToken.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', actor_token: actor.access_token, actor_token_type: 'urn:ietf:params:oauth:token-type:access_token', resource: RESOURCE };
    const grant = 'urn:ietf:params:oauth:grant-type:token-exchange';
    // A thief with the token but not the key: refused, and the refusal is audited.
    await expectOAuthError(client.genericGrantRequest(config, grant, params), 'invalid_grant');
    const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    await expectOAuthError(client.genericGrantRequest(config, grant, params, { DPoP: thief }), 'invalid_grant');
    expect(await auditRows(server, 'token.exchange', (r) => r.outcome === 'deny' && String(r.details.reason).includes('DPoP-bound'))).not.toHaveLength(0);
    // The holder of the key: allowed.
    const exchanged = await client.genericGrantRequest(config, grant, params, { DPoP: holder });
    expect(exchanged.access_token).toBeTypeOf('string');
  });

  it('RFC8693 delegation: consent by authorization code + PKCE (password + TOTP), exchange gives sub=user, act=agent, intersected scopes; nested act for a sub-agent', async () => {
    const user = await adminJson<{ id: string; email: string }>(server, 'POST', '/api/v1/humans', { email: `user-${backend}@example.com`, displayName: 'User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: 'correct horse battery staple' }, [204]);
    const { secret } = await adminJson<{ secret: string }>(server, 'POST', `/api/v1/humans/${user.id}/totp`);
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/totp/confirm`, { code: await totpCode({ secret }) }, [204]);

    const agentA = await createAgent(server, owner.id, 'assistant');
    const clientA = await createClient(server, agentA.id, { auth: 'client_secret_basic', scopes: ['tickets:read', 'tickets:write', 'admin'], redirectUris: ['https://assistant.example/callback'] });
    const configA = await discover(issuer, clientA.client_id, client.ClientSecretBasic(clientA.client_secret), { redirect_uris: ['https://assistant.example/callback'] });

    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(configA, {
      redirect_uri: 'https://assistant.example/callback',
      scope: 'openid tickets:read tickets:write',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      resource: issuer,
      state,
    });
    // RFC6238-5.2 a code is accepted once: enrolment used this step's code, so sign in with the next step's (within the ±1-step window).
    const callback = await browserLogin(authorizationUrl, { email: user.email, password: 'correct horse battery staple', totp: () => totpCode({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
    const userToken = await client.authorizationCodeGrant(configA, callback, { pkceCodeVerifier: verifier, expectedState: state }, { resource: issuer });
    expect(userToken.scope?.split(' ')).toEqual(expect.arrayContaining(['tickets:read', 'tickets:write']));
    const delegations = await adminJson<{ items: { identityId: string; scopes: string[] }[] }>(server, 'GET', `/api/v1/humans/${user.id}/delegations`);
    expect(delegations.items).toEqual([expect.objectContaining({ identityId: agentA.id, scopes: expect.arrayContaining(['tickets:read', 'tickets:write']) })]);

    const actorA = await client.clientCredentialsGrant(configA, { resource: issuer, scope: 'tickets:read tickets:write admin' });
    const exchange = (config: client.Configuration, subject: string, actor: string, extra: Record<string, string>) =>
      client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        actor_token: actor,
        actor_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        ...extra,
      });
    const delegated = await exchange(configA, userToken.access_token, actorA.access_token, { resource: RESOURCE, scope: 'tickets:write admin' });
    expect(delegated.issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token');
    expect(delegated.scope).toBe('tickets:write');
    const view = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${delegated.access_token}`, dpop: undefined, method: 'GET', url: RESOURCE }, { audience: RESOURCE });
    expect(view).toMatchObject({ subject: user.id, userId: user.id, identityId: agentA.id, actChain: [agentA.id], scopes: ['tickets:write'] });
    expect(await auditRows(server, 'token.exchange', (r) => r.outcome === 'success' && JSON.stringify(r.details.chain) === JSON.stringify([agentA.id]))).not.toHaveLength(0);

    // A sub-agent B, delegated by the user for tickets:read, acts on A's delegated token: act nests.
    const agentB = await createAgent(server, owner.id, 'sub-agent');
    const clientB = await createClient(server, agentB.id, { auth: 'client_secret_basic', scopes: ['tickets:read', 'tickets:write'] });
    const configB = await discover(issuer, clientB.client_id, client.ClientSecretBasic(clientB.client_secret));
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/delegations`, { identityId: agentB.id, scopes: ['tickets:read'] });
    const forB = await exchange(configA, userToken.access_token, actorA.access_token, { resource: issuer, scope: 'tickets:read tickets:write' });
    const actorB = await client.clientCredentialsGrant(configB, { resource: issuer });
    const nested = await exchange(configB, forB.access_token, actorB.access_token, { resource: RESOURCE });
    expect(nested.scope).toBe('tickets:read');
    const nestedView = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${nested.access_token}`, dpop: undefined, method: 'GET', url: RESOURCE }, { audience: RESOURCE });
    expect(nestedView.actChain).toEqual([agentB.id, agentA.id]);
    expect(nestedView.claims.act).toMatchObject({ sub: agentB.id, act: { sub: agentA.id } });

    // The chain is capped (MANDATE_OAUTH_DELEGATION_MAX_DEPTH, default 3): a fourth actor is refused.
    const deeper: { config: client.Configuration; actor: string }[] = [];
    for (const name of ['third', 'fourth']) {
      const agent = await createAgent(server, owner.id, name);
      const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
      const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
      await adminJson(server, 'POST', `/api/v1/humans/${user.id}/delegations`, { identityId: agent.id, scopes: ['tickets:read'] });
      deeper.push({ config, actor: (await client.clientCredentialsGrant(config, { resource: issuer })).access_token });
    }
    const forThird = await exchange(configB, forB.access_token, actorB.access_token, { resource: issuer });
    const third = await exchange(deeper[0]!.config, forThird.access_token, deeper[0]!.actor, { resource: issuer });
    expect(third.access_token).toBeTruthy();
    await expectOAuthError(exchange(deeper[1]!.config, third.access_token, deeper[1]!.actor, { resource: RESOURCE }), 'invalid_grant');
    expect(await auditRows(server, 'token.exchange', (r) => r.outcome === 'deny' && String(r.details.reason).includes('deeper than 3'))).not.toHaveLength(0);

    // RFC8693-2.1 the actor must be allowed to act for the subject: agent C has no delegation.
    const agentC = await createAgent(server, owner.id, 'stranger');
    const clientC = await createClient(server, agentC.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    const configC = await discover(issuer, clientC.client_id, client.ClientSecretBasic(clientC.client_secret));
    const actorC = await client.clientCredentialsGrant(configC, { resource: issuer });
    await expect(exchange(configC, userToken.access_token, actorC.access_token, { resource: RESOURCE })).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await auditRows(server, 'token.exchange', (r) => r.outcome === 'deny' && r.details.actor === agentC.id)).not.toHaveLength(0);
    // …nor borrow another agent's token as its actor token.
    await expect(exchange(configC, userToken.access_token, actorA.access_token, { resource: RESOURCE })).rejects.toMatchObject({ error: 'invalid_grant' });

    // The user's token that agent A's client holds does not manage the user's grants (self-service needs a
    // client of the user's own: test/oauth-self-service.test.ts); revoking the grant does stop the exchange.
    const listed = await fetch(`${issuer}/oauth/delegations`, { headers: { authorization: `Bearer ${userToken.access_token}` } });
    expect(listed.status).toBe(403);
    expect(((await listed.json()) as { code: string }).code).toBe('DELEGATION_SELF_SERVICE_FORBIDDEN');
    const grants = await adminJson<{ items: { id: string; identityId: string }[] }>(server, 'GET', `/api/v1/humans/${user.id}/delegations`);
    const grantA = grants.items.find((d) => d.identityId === agentA.id)!;
    expect((await fetch(`${issuer}/oauth/delegations/${grantA.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${userToken.access_token}` } })).status).toBe(403);
    await adminJson(server, 'DELETE', `/api/v1/delegations/${grantA.id}`);
    await expect(exchange(configA, userToken.access_token, actorA.access_token, { resource: RESOURCE })).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
