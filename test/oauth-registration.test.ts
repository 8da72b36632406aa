import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, createAgent, createClient, discover, oauthErrorOf } from './oauth-support.ts';

const INITIAL_ACCESS_TOKEN = 'iat_0123456789abcdefghijklmnopqrstuvwxyz';

describe('registration options, DPoP nonces and key rotation', () => {
  let server: TestServer;
  let issuer: string;

  beforeAll(async () => {
    Object.assign(process.env, { MANDATE_OAUTH_DYNAMIC_REGISTRATION: 'token', MANDATE_OAUTH_INITIAL_ACCESS_TOKEN: INITIAL_ACCESS_TOKEN, MANDATE_OAUTH_DPOP_NONCE: 'true', MANDATE_OAUTH_CLIENT_ID_METADATA_DOCUMENTS: 'true' });
    server = await startTestServer('sqlite');
    for (const name of ['MANDATE_OAUTH_DYNAMIC_REGISTRATION', 'MANDATE_OAUTH_INITIAL_ACCESS_TOKEN', 'MANDATE_OAUTH_DPOP_NONCE', 'MANDATE_OAUTH_CLIENT_ID_METADATA_DOCUMENTS']) delete process.env[name];
    issuer = server.services.config.publicUrl;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('RFC7591-3 dynamic registration needs the initial access token when enabled with one', async () => {
    const metadata = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata.registration_endpoint).toBe(`${issuer}/oauth/register`);
    expect(metadata.client_id_metadata_document_supported).toBe(true);
    const body = JSON.stringify({ redirect_uris: ['https://mcp-client.example/callback'], token_endpoint_auth_method: 'none', client_name: 'MCP client' });
    const refused = await fetch(`${issuer}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(refused.status).toBe(401);
    const created = await fetch(`${issuer}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` }, body });
    expect(created.status).toBe(201);
    const registered = (await created.json()) as { client_id: string };
    expect(registered.client_id).toMatch(/^cli_dyn_/);
    const row = await server.services.store.db.selectFrom('oauth_clients').selectAll().where('client_id', '=', registered.client_id).executeTakeFirst();
    expect(row?.identity_id).toBeNull();
  });

  it('Client ID Metadata Documents: a URL client id that resolves to a private address is never fetched', async () => {
    const url = new URL(`${issuer}/oauth/authorize`);
    url.search = new URLSearchParams({ client_id: 'https://127.0.0.1:1/client.json', response_type: 'code', redirect_uri: 'https://x.example/cb', code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  it('RFC9449-8 DPoP nonces are demanded and honoured at the token endpoint and at resource servers', async () => {
    const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'nonce@example.com', displayName: 'Owner' });
    const agent = await createAgent(server, owner.id, 'nonce-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic', dpop: true });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
    let token: Awaited<ReturnType<typeof client.clientCredentialsGrant>> | undefined;
    for (let attempt = 0; attempt < 3 && !token; attempt++) {
      try {
        token = await client.clientCredentialsGrant(config, { resource: issuer }, { DPoP: dpop });
      } catch (error) {
        // RFC 9449 §8: the first request learns the nonce (use_dpop_nonce) and retries with it.
        if (oauthErrorOf(error) !== 'use_dpop_nonce') throw error;
      }
    }
    expect(token?.token_type.toLowerCase()).toBe('dpop');
    let response: Response | undefined;
    for (let attempt = 0; attempt < 3 && !response; attempt++) {
      try {
        response = await client.fetchProtectedResource(config, token!.access_token, new URL(`${issuer}/oauth/token-info`), 'GET', undefined, undefined, { DPoP: dpop });
      } catch (error) {
        if (oauthErrorOf(error) !== 'use_dpop_nonce') throw error;
      }
    }
    expect(response?.status).toBe(200);
    // A proof without a nonce is answered with a fresh one.
    const bare = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `DPoP ${token!.access_token}`, dpop: 'x.y.z' } });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('dpop-nonce')).toBeTruthy();
  });

  it('key rotation: new tokens use the new key, old tokens stay valid until they expire, JWKS publishes both', async () => {
    const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'rotate@example.com', displayName: 'Owner' });
    const agent = await createAgent(server, owner.id, 'rotate-bot');
    const created = await createClient(server, agent.id, { auth: 'client_secret_basic' });
    const config = await discover(issuer, created.client_id, client.ClientSecretBasic(created.client_secret));
    const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid;
    const before = await client.clientCredentialsGrant(config, { resource: issuer });
    const { kid } = await adminJson<{ kid: string }>(server, 'POST', '/api/v1/oauth/keys/rotate');
    const after = await client.clientCredentialsGrant(config, { resource: issuer });
    expect(kidOf(after.access_token)).toBe(kid);
    expect(kidOf(before.access_token)).not.toBe(kid);
    const jwks = (await (await fetch(`${issuer}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kid, kidOf(before.access_token)]));
    // Scheduled rotation: not due for a fresh key, due once it is older than MANDATE_OAUTH_KEY_ROTATION_DAYS.
    expect(await server.services.oauth.rotateIfDue()).toBe(false);
    expect(await server.services.oauth.rotateIfDue(Date.now() + 31 * 86_400_000)).toBe(true);
    const third = await client.clientCredentialsGrant(config, { resource: issuer });
    expect(kidOf(third.access_token)).not.toBe(kid);
    for (const token of [before, after, third]) {
      const view = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${token.access_token}`, dpop: undefined, method: 'GET', url: issuer }, { audience: issuer });
      expect(view.identityId).toBe(agent.id);
    }
  });
});
