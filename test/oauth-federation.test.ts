import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress, safeFetchJson } from '../src/oauth/safe-fetch.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, auditRows, createAgent, discover, expectOAuthError } from './oauth-support.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('workload identity federation end to end', () => {
  let server: TestServer;
  let issuer: string;
  let jwksServer: Server;
  let externalIssuer: string;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let workload: { id: string };
  let config: client.Configuration;
  /** Every path the JWKS server was asked for. */
  const fetches: string[] = [];

  beforeAll(async () => {
    // The test issuer's JWKS is served on loopback: allowed only because this server says so.
    process.env.MANDATE_FEDERATION_ALLOW_PRIVATE_NETWORKS = 'true';
    server = await startTestServer('sqlite');
    delete process.env.MANDATE_FEDERATION_ALLOW_PRIVATE_NETWORKS;
    issuer = server.services.config.publicUrl;
    keys = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'ci-1', alg: 'ES256', use: 'sig' };
    jwksServer = createServer((req, res) => {
      fetches.push(req.url ?? '');
      if (req.url?.startsWith('/broken')) return void res.writeHead(500).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    externalIssuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
    const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'ci-owner@example.com', displayName: 'CI owner' });
    workload = await createAgent(server, owner.id, 'deploy-pipeline', 'workload');
    await adminJson(server, 'POST', '/api/v1/oauth/federation/issuers', {
      issuer: externalIssuer,
      jwksUrl: `${externalIssuer}/.well-known/jwks`,
      audience: 'https://mandate.example',
      rules: [{ claims: { repository: 'acme/deploy', ref: 'refs/heads/main' }, identityId: workload.id, scopes: ['deploy:write', 'artifacts:read'] }],
    });
    config = await discover(issuer, 'workload-federation', client.None());
  });
  afterAll(async () => {
    jwksServer?.close();
    await server?.stop();
  });

  const githubToken = (claims: Record<string, unknown>) =>
    new SignJWT({ repository: 'acme/deploy', ref: 'refs/heads/main', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'ci-1', typ: 'JWT' })
      .setIssuer(externalIssuer)
      .setAudience('https://mandate.example')
      .setSubject('repo:acme/deploy:ref:refs/heads/main')
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti(crypto.randomUUID())
      .sign(keys.privateKey);

  it('RFC8693 a federated JWT from a trusted issuer is exchanged for the mapped workload\'s token', async () => {
    const response = await client.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: await githubToken({}),
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      resource: 'https://deploy.example/api',
      scope: 'deploy:write admin',
    });
    expect(response.scope).toBe('deploy:write');
    expect(response.issued_token_type).toBe('urn:ietf:params:oauth:token-type:access_token');
    const verified = await server.services.oauth.verifyAccessToken({ authorization: `Bearer ${response.access_token}`, dpop: undefined, method: 'POST', url: 'https://deploy.example/api' }, { audience: 'https://deploy.example/api' });
    expect(verified).toMatchObject({ subject: workload.id, identityId: workload.id, scopes: ['deploy:write'] });
    expect(await auditRows(server, 'token.federate', (r) => r.outcome === 'success' && r.target === workload.id)).not.toHaveLength(0);
  });

  it('RFC7523-2.1 the same works as a jwt-bearer grant', async () => {
    const response = await client.genericGrantRequest(config, JWT_BEARER, { assertion: await githubToken({}), resource: 'https://deploy.example/api' });
    expect(response.scope?.split(' ').sort()).toEqual(['artifacts:read', 'deploy:write']);
  });

  it('is refused when no claim rule matches (another branch), when replayed, or when signed by another key; each audited', async () => {
    await expectOAuthError(client.genericGrantRequest(config, JWT_BEARER, { assertion: await githubToken({ ref: 'refs/heads/feature' }) }), 'invalid_grant');
    expect(await auditRows(server, 'token.federate', (r) => r.outcome === 'deny' && r.details.reason === 'FEDERATION_NO_RULE')).not.toHaveLength(0);

    const once = await githubToken({});
    await client.genericGrantRequest(config, JWT_BEARER, { assertion: once });
    await expectOAuthError(client.genericGrantRequest(config, JWT_BEARER, { assertion: once }), 'invalid_grant');
    expect(await auditRows(server, 'token.federate', (r) => r.details.reason === 'FEDERATION_TOKEN_REPLAYED')).not.toHaveLength(0);
    // An issuer that sends no jti: the assertion itself is usable once.
    const noJti = await new SignJWT({ repository: 'acme/deploy', ref: 'refs/heads/main' }).setProtectedHeader({ alg: 'ES256', kid: 'ci-1' }).setIssuer(externalIssuer).setAudience('https://mandate.example').setSubject('repo:acme/deploy:ref:refs/heads/main').setIssuedAt().setExpirationTime('5m').sign(keys.privateKey);
    await client.genericGrantRequest(config, JWT_BEARER, { assertion: noJti });
    await expectOAuthError(client.genericGrantRequest(config, JWT_BEARER, { assertion: noJti }), 'invalid_grant');

    const other = await generateKeyPair('ES256');
    const forged = await new SignJWT({ repository: 'acme/deploy', ref: 'refs/heads/main' }).setProtectedHeader({ alg: 'ES256', kid: 'ci-1' }).setIssuer(externalIssuer).setAudience('https://mandate.example').setSubject('x').setIssuedAt().setExpirationTime('5m').sign(other.privateKey);
    await expectOAuthError(client.genericGrantRequest(config, JWT_BEARER, { assertion: forged }), 'invalid_grant');
  });

  it('assertions for a trusted issuer cannot make Mandate fetch its keys on every one: concurrent ones share a fetch, a failed one is not retried at once', async () => {
    for (const name of ['shared', 'broken']) {
      await adminJson(server, 'POST', '/api/v1/oauth/federation/issuers', { issuer: `${externalIssuer}/${name}`, jwksUrl: `${externalIssuer}/${name}/jwks`, audience: 'https://mandate.example', rules: [{ claims: { repository: 'acme/deploy' }, identityId: workload.id, scopes: ['deploy:write'] }] });
    }
    const assertion = (iss: string) => new SignJWT({ repository: 'acme/deploy' }).setProtectedHeader({ alg: 'ES256', kid: 'ci-1' }).setIssuer(iss).setAudience('https://mandate.example').setSubject('s').setIssuedAt().setExpirationTime('5m').setJti(crypto.randomUUID()).sign(keys.privateKey);
    const federation = server.services.oauth.federation;
    // Twenty at once, the keys not cached yet: one fetch.
    const results = await Promise.allSettled(await Promise.all(Array.from({ length: 20 }, async () => federation.resolve(await assertion(`${externalIssuer}/shared`)))));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(fetches.filter((f) => f === '/shared/jwks')).toHaveLength(1);
    // An issuer whose keys cannot be fetched: refused, and asked again only after a pause.
    for (let i = 0; i < 5; i++) await expect(federation.resolve(await assertion(`${externalIssuer}/broken`))).rejects.toThrow();
    expect(fetches.filter((f) => f === '/broken/jwks')).toHaveLength(1);
    // A change to the trusted issuers forgets what was remembered: the next assertion fetches again.
    await adminJson(server, 'POST', '/api/v1/oauth/federation/issuers', { issuer: `${externalIssuer}/another`, jwksUrl: `${externalIssuer}/another/jwks`, audience: 'https://mandate.example', rules: [{ claims: { repository: 'acme/deploy' }, identityId: workload.id, scopes: [] }] });
    await expect(federation.resolve(await assertion(`${externalIssuer}/broken`))).rejects.toThrow();
    expect(fetches.filter((f) => f === '/broken/jwks')).toHaveLength(2);
  });

  it('safe JWKS fetching refuses private addresses unless allowed, and http outside dev mode', async () => {
    expect(isPrivateAddress('127.0.0.1')).toBe(true);
    expect(isPrivateAddress('10.1.2.3')).toBe(true);
    expect(isPrivateAddress('169.254.169.254')).toBe(true);
    expect(isPrivateAddress('::1')).toBe(true);
    expect(isPrivateAddress('fd00::1')).toBe(true);
    expect(isPrivateAddress('8.8.8.8')).toBe(false);
    expect(isPrivateAddress('::ffff:10.0.0.1')).toBe(true);
    expect(isPrivateAddress('2606:4700::1111')).toBe(false);
    await expect(safeFetchJson(`${externalIssuer}/jwks`, { allowHttp: true, allowPrivateNetworks: false })).rejects.toMatchObject({ code: 'FETCH_ADDRESS_FORBIDDEN' });
    await expect(safeFetchJson(`${externalIssuer}/jwks`, { allowHttp: false, allowPrivateNetworks: true })).rejects.toMatchObject({ code: 'FETCH_URL_INSECURE' });
    await expect(safeFetchJson(`${externalIssuer}/jwks`, { allowHttp: true, allowPrivateNetworks: true, maxBytes: 10 })).rejects.toMatchObject({ code: 'FETCH_TOO_LARGE' });
  });
});
