import { createHmac, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT, importJWK } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, auditRows, browserLogin, createAgent, createClient, discover, expectOAuthError } from './oauth-support.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe.each(BACKENDS)('OAuth attack cases: each is denied and audited (%s)', (backend) => {
  let server: TestServer;
  let issuer: string;
  let owner: { id: string };
  let agent: { id: string };
  let config: client.Configuration;
  let clientId: string;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    issuer = server.services.config.publicUrl;
    owner = await adminJson(server, 'POST', '/api/v1/humans', { email: `attack-owner-${backend}@example.com`, displayName: 'Owner' });
    agent = await createAgent(server, owner.id, 'target-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    clientId = created.client_id;
    config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    token = (await client.clientCredentialsGrant(config, { resource: issuer, scope: 'tickets:read' })).access_token;
  });
  afterAll(async () => {
    await server?.stop();
  });

  const present = async (value: string, scheme = 'Bearer') => {
    const response = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `${scheme} ${value}` } });
    return { status: response.status, body: (await response.json()) as { code?: string } };
  };
  const deniedWith = async (value: string, code: string) => {
    const { status, body } = await present(value);
    expect(status).toBe(401);
    expect(body.code).toBe(code);
    const rows = await auditRows(server, 'token.verify', (r) => r.outcome === 'deny' && r.details.code === code);
    expect(rows.length).toBeGreaterThan(0);
  };
  const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

  it('a genuine token is accepted (control)', async () => {
    expect((await present(token)).status).toBe(200);
  });

  it('RFC8725-3.1 alg "none" is refused', async () => {
    const [header] = token.split('.');
    const kid = (JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')) as { kid: string }).kid;
    const forged = `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64({ ...claimsOf(token), scope: 'tickets:read admin', jti: randomUUID() })}.`;
    await deniedWith(forged, 'TOKEN_INVALID');
  });

  it('RFC8725-3.1 HS256 signed with the public key is refused (algorithm confusion)', async () => {
    const jwks = (await (await fetch(`${issuer}/oauth/jwks`)).json()) as { keys: { kid: string; n: string }[] };
    const publicKey = jwks.keys[0]!;
    for (const secret of [JSON.stringify(publicKey), publicKey.n]) {
      const head = b64({ alg: 'HS256', typ: 'at+jwt', kid: publicKey.kid });
      const body = b64({ ...claimsOf(token), jti: randomUUID() });
      const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
      await deniedWith(`${head}.${body}.${signature}`, 'TOKEN_INVALID');
    }
  });

  it('RFC8707 a token for another resource is refused (wrong audience)', async () => {
    const other = await client.clientCredentialsGrant(config, { resource: 'https://elsewhere.example/api' });
    await deniedWith(other.access_token, 'TOKEN_AUDIENCE_MISMATCH');
  });

  it('RFC9068-4 an expired token is refused', async () => {
    // Signed with Mandate's real key (read in-process) but expired ten minutes ago.
    const current = await server.services.oauth.keys.current();
    const key = await importJWK(current.privateJwk as never, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ ...claimsOf(token), jti: randomUUID(), iat: now - 900, exp: now - 600 }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: current.id }).sign(key);
    await deniedWith(expired, 'TOKEN_EXPIRED');
  });

  it('a tampered payload is refused (signature)', async () => {
    const [h, , s] = token.split('.');
    await deniedWith(`${h}.${b64({ ...claimsOf(token), scope: 'tickets:read admin' })}.${s}`, 'TOKEN_INVALID');
  });

  it('RFC9449-7.1 a replayed DPoP proof is refused', async () => {
    const dpopAgent = await createAgent(server, owner.id, 'dpop-target');
    const created = await createClient(server, dpopAgent.id, { auth: 'client_secret_basic' });
    const dpopConfig = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const handle = client.getDPoPHandle(dpopConfig, await client.randomDPoPKeyPair('ES256'));
    const bound = await client.clientCredentialsGrant(dpopConfig, { resource: issuer }, { DPoP: handle });
    let proof = '';
    dpopConfig[client.customFetch] = (url, options) => {
      proof = new Headers(options.headers).get('dpop') ?? '';
      return fetch(url, options as RequestInit);
    };
    expect((await client.fetchProtectedResource(dpopConfig, bound.access_token, new URL(`${issuer}/oauth/token-info`), 'GET', undefined, undefined, { DPoP: handle })).status).toBe(200);
    const replay = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `DPoP ${bound.access_token}`, dpop: proof } });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { code: string }).code).toBe('DPOP_REPLAY');
    expect(await auditRows(server, 'token.verify', (r) => r.details.code === 'DPOP_REPLAY')).not.toHaveLength(0);
  });

  it('RFC8693-2.1 an actor that the user did not delegate to cannot act for them', async () => {
    const user = await adminJson<{ id: string; email: string }>(server, 'POST', '/api/v1/humans', { email: `attack-user-${backend}@example.com`, displayName: 'User' });
    await adminJson(server, 'POST', `/api/v1/humans/${user.id}/password`, { password: 'a long enough password' }, [204]);
    const assistant = await createAgent(server, owner.id, 'assistant');
    const assistantClient = await createClient(server, assistant.id, { auth: 'client_secret_basic', scopes: ['tickets:read'], redirectUris: ['https://assistant.example/cb'] });
    const assistantConfig = await discover(issuer, assistantClient.client_id, client.ClientSecretBasic(assistantClient.client_secret), { redirect_uris: ['https://assistant.example/cb'] });
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(assistantConfig, { redirect_uri: 'https://assistant.example/cb', scope: 'openid tickets:read', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', resource: issuer });
    const callback = await browserLogin(url, { email: user.email, password: 'a long enough password' });
    const userToken = await client.authorizationCodeGrant(assistantConfig, callback, { pkceCodeVerifier: verifier }, { resource: issuer });

    const intruder = await createAgent(server, owner.id, 'intruder');
    const intruderClient = await createClient(server, intruder.id, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    const intruderConfig = await discover(issuer, intruderClient.client_id, client.ClientSecretBasic(intruderClient.client_secret));
    const intruderToken = await client.clientCredentialsGrant(intruderConfig, { resource: issuer });
    await expectOAuthError(
      client.genericGrantRequest(intruderConfig, 'urn:ietf:params:oauth:grant-type:token-exchange', {
        subject_token: userToken.access_token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        actor_token: intruderToken.access_token,
        actor_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        resource: 'https://tickets.example/api',
      }),
      'invalid_grant',
    );
    const rows = await auditRows(server, 'token.exchange', (r) => r.outcome === 'deny' && r.details.actor === intruder.id && r.details.subject === user.id);
    expect(rows.length).toBeGreaterThan(0);
  });

  it('a decommissioned agent\'s token is refused, and the agent gets no new token', async () => {
    await adminJson(server, 'POST', `/api/v1/agents/${agent.id}/decommission`, { reason: 'retired' });
    await deniedWith(token, 'IDENTITY_DECOMMISSIONED');
    await expectOAuthError(client.clientCredentialsGrant(config, { resource: issuer }), 'invalid_client');
    expect(await auditRows(server, 'token.issue', (r) => r.outcome === 'deny' && r.target === clientId)).not.toHaveLength(0);
    expect((await fetch(`${issuer}/oauth/introspect`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) }).then((r) => r.json())) as { active: boolean }).toEqual({ active: false });
  });

  it('the OAuth admin endpoints answer arbitrary bodies with a 4xx and a code, never a 5xx', async () => {
    const paths = [
      `/api/v1/humans/${owner.id}/password`,
      `/api/v1/humans/${owner.id}/totp/confirm`,
      `/api/v1/humans/${owner.id}/delegations`,
      '/api/v1/oauth/federation/issuers',
      `/api/v1/agents/${agent.id}/certificates`,
      `/api/v1/agents/${agent.id}/clients`,
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), fc.oneof(fc.anything(), fc.record({ password: fc.string(), code: fc.string(), identityId: fc.string(), scopes: fc.array(fc.string()), csr: fc.string(), auth: fc.string(), issuer: fc.string(), rules: fc.anything() }, { requiredKeys: [] })), async (path, body) => {
        const response = await server.api('POST', path, JSON.stringify(body ?? null) ?? 'null');
        expect(response.status, `${path} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
        expect(response.status, `${path} ${JSON.stringify(body)}`).toBeLessThan(500);
        expect(((await response.json()) as { code?: string }).code).toBeTruthy();
      }),
      { numRuns: 60 },
    );
    for (const [method, path] of [['GET', '/oauth/interaction/nope'], ['POST', '/oauth/interaction/nope/login'], ['POST', '/oauth/interaction/nope/consent'], ['POST', '/oauth/certificates'], ['GET', '/oauth/delegations']] as const) {
      const response = await fetch(`${issuer}${path}`, { method, headers: { 'content-type': 'application/x-www-form-urlencoded' }, ...(method === 'POST' && { body: 'csrf=x' }) });
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
    }
  });

  it('malformed tokens, forms and client requests get a 4xx with a code, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.constantFrom('Bearer', 'DPoP', 'Basic', ''), async (value, scheme) => {
        const response = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `${scheme} ${value}`.replace(/[^\x20-\x7e]/g, '') } });
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
        expect(((await response.json()) as { code?: string }).code).toBeTruthy();
      }),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), fc.constantFrom('/oauth/introspect', '/oauth/revoke', '/oauth/token'), async (body, path) => {
        const response = await fetch(`${issuer}${path}`, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/x-www-form-urlencoded' }, body });
        expect(response.status).toBeLessThan(500);
      }),
      { numRuns: 40 },
    );
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (body) => {
        const response = await server.api('POST', `/api/v1/workloads/${agent.id}/clients`, JSON.stringify(body ?? null) ?? 'null');
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
      }),
      { numRuns: 40 },
    );
  });
});
