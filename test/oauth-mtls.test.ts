import { request } from 'node:https';
import { createPrivateKey, webcrypto } from 'node:crypto';
import '@abraham/reflection';
import * as x509 from '@peculiar/x509';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { adminJson, createAgent, createClient, discover } from './oauth-support.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** fetch over mutual TLS (node:https), for openid-client's customFetch. */
function mtlsFetch(tls: { key?: string; cert?: string; ca: string }) {
  return (url: string, options: { method?: string; headers?: ConstructorParameters<typeof Headers>[0]; body?: unknown }): Promise<Response> =>
    new Promise((resolve, reject) => {
      const headers = Object.fromEntries(new Headers(options.headers));
      const req = request(url, { method: options.method ?? 'GET', headers, ...tls }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }));
        });
      });
      req.on('error', reject);
      if (options.body !== undefined && options.body !== null) req.write(typeof options.body === 'string' ? options.body : String(options.body));
      req.end();
    });
}

describe('internal CA, mTLS client authentication and certificate-bound tokens (RFC 8705)', () => {
  let server: TestServer;
  let issuer: string;
  let ca: string;

  beforeAll(async () => {
    process.env.MANDATE_MTLS_PORT = '0';
    server = await startTestServer('sqlite');
    delete process.env.MANDATE_MTLS_PORT;
    await server.services.oauth.mtlsReady;
    issuer = server.services.config.publicUrl;
    ca = await (await fetch(`${issuer}/oauth/ca`)).text();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function certificateFor(kind: 'agent' | 'workload', id: string): Promise<{ key: string; cert: string; issued: Record<string, string> }> {
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    const issued = await adminJson<Record<string, string>>(server, 'POST', `/api/v1/${kind}s/${id}/certificates`, { csr: csr.toString('pem') });
    const key = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
    return { key, cert: issued.certificate!, issued };
  }

  it('issues a 1-hour certificate from a CSR with a SPIFFE URI SAN for the identity', async () => {
    const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'pki-owner@example.com', displayName: 'Owner' });
    const agent = await createAgent(server, owner.id, 'cert-bot');
    const { issued } = await certificateFor('agent', agent.id);
    const cert = new x509.X509Certificate(issued.certificate!);
    const spiffe = `spiffe://${new URL(issuer).hostname}/agent/${agent.id}`;
    expect(issued.spiffeId).toBe(spiffe);
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON()).toEqual([{ type: 'url', value: spiffe }]);
    const lifetime = cert.notAfter.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(3500_000);
    expect(lifetime).toBeLessThanOrEqual(3600_000);
    expect(await cert.verify({ publicKey: new x509.X509Certificate(ca).publicKey })).toBe(true);
    expect(server.services.oauth.identityOfCertificate(new (await import('node:crypto')).X509Certificate(issued.certificate!))).toEqual({ kind: 'agent', id: agent.id });
    const bad = await server.api('POST', `/api/v1/agents/${agent.id}/certificates`, { csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----'.padEnd(120, ' ') });
    expect(bad.status).toBe(400);
  });

  it('RFC8705-2.1 tls_client_auth and RFC8705-2.2 self_signed_tls_client_auth: the token endpoint maps the certificate to the workload; RFC8705-3 the token is bound and refused without the certificate', async () => {
    const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'mtls-owner@example.com', displayName: 'Owner' });
    const workload = await createAgent(server, owner.id, 'mtls-workload', 'workload');
    const created = await createClient(server, workload.id, { auth: 'tls_client_auth', scopes: ['jobs:run'] }, 'workload');
    expect(created.tls_client_auth_san_uri).toMatch(/^spiffe:\/\//);
    const { key, cert } = await certificateFor('workload', workload.id);

    const config = await discover(issuer, created.client_id, client.TlsClientAuth(), { use_mtls_endpoint_aliases: true });
    expect(config.serverMetadata().mtls_endpoint_aliases?.token_endpoint).toMatch(/^https:\/\//);
    config[client.customFetch] = mtlsFetch({ key, cert, ca }) as never;
    const token = await client.clientCredentialsGrant(config, { resource: issuer, scope: 'jobs:run' });
    const claims = JSON.parse(Buffer.from(token.access_token.split('.')[1]!, 'base64url').toString('utf8')) as { cnf?: Record<string, string>; sub: string };
    expect(claims.cnf?.['x5t#S256']).toBeTruthy();
    expect(claims.sub).toBe(workload.id);

    const mtlsOrigin = server.services.oauth.mtlsOrigin!;
    const withCert = await mtlsFetch({ key, cert, ca })(`${mtlsOrigin}/oauth/token-info`, { headers: { authorization: `Bearer ${token.access_token}` } });
    expect(withCert.status).toBe(200);
    const withoutCert = await fetch(`${issuer}/oauth/token-info`, { headers: { authorization: `Bearer ${token.access_token}` } });
    expect(withoutCert.status).toBe(401);
    expect(((await withoutCert.json()) as { code: string }).code).toBe('MTLS_CERTIFICATE_REQUIRED');
    await expect(
      server.services.oauth.verifyAccessToken({ authorization: `Bearer ${token.access_token}`, dpop: undefined, method: 'GET', url: issuer }, { audience: issuer }),
    ).rejects.toMatchObject({ code: 'MTLS_CERTIFICATE_REQUIRED' });

    // RFC8705-2.2 self_signed_tls_client_auth: the client registers its own certificate (x5c in jwks).
    const selfSigned = await createAgent(server, owner.id, 'self-signed-agent');
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const own = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=self-signed-agent', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, notAfter: new Date(Date.now() + 86_400_000) });
    const jwk = { ...(await webcrypto.subtle.exportKey('jwk', keys.publicKey)), x5c: [Buffer.from(own.rawData).toString('base64')] };
    const selfClient = await createClient(server, selfSigned.id, { auth: 'self_signed_tls_client_auth', jwks: { keys: [jwk] } });
    const selfConfig = await discover(issuer, selfClient.client_id, client.TlsClientAuth(), { use_mtls_endpoint_aliases: true });
    const ownKey = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
    selfConfig[client.customFetch] = mtlsFetch({ key: ownKey, cert: own.toString('pem'), ca }) as never;
    const selfToken = await client.clientCredentialsGrant(selfConfig, { resource: issuer });
    expect((JSON.parse(Buffer.from(selfToken.access_token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub).toBe(selfSigned.id);

    // RFC7662 introspection over mTLS with the same certificate authenticates the client.
    const introspected = await mtlsFetch({ key, cert, ca })(`${mtlsOrigin}/oauth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: created.client_id, token: token.access_token }).toString() });
    expect(((await introspected.json()) as { active: boolean }).active).toBe(true);

    // Another identity's certificate (same CA) does not authenticate this client.
    const other = await createAgent(server, owner.id, 'other-workload', 'workload');
    const stranger = await certificateFor('workload', other.id);
    config[client.customFetch] = mtlsFetch({ key: stranger.key, cert: stranger.cert, ca }) as never;
    await expect(client.clientCredentialsGrant(config, { resource: issuer })).rejects.toBeTruthy();
  });

  it('RFC8705-3 the MCP gateway on the mutual-TLS listener: a certificate-bound token calls a tool with its certificate, and is refused without it', async () => {
    const upstream = await startMinimalUpstream({});
    try {
      const owner = await adminJson<{ id: string }>(server, 'POST', '/api/v1/humans', { email: 'mtls-gw-owner@example.com', displayName: 'Owner' });
      const agent = await createAgent(server, owner.id, 'mtls-gateway-agent');
      const created = await createClient(server, agent.id, { auth: 'tls_client_auth' });
      const { key, cert } = await certificateFor('agent', agent.id);
      await adminJson(server, 'POST', '/api/v1/mcp/servers', { name: 'mtls-demo', url: upstream.url });
      await adminJson(server, 'PUT', '/api/v1/policies', { cedar: `permit (principal == Agent::"${agent.id}", action == Action::"tools/call", resource in McpServer::"mtls-demo");` });
      const mtlsOrigin = server.services.oauth.mtlsOrigin!;
      // The mTLS listener is another origin for agents to call: the gateway's DNS-rebinding check must be told.
      await adminJson(server, 'PATCH', '/api/v1/mcp/settings', { allowedHosts: [new URL(mtlsOrigin).host] });
      const config = await discover(issuer, created.client_id, client.TlsClientAuth(), { use_mtls_endpoint_aliases: true });
      config[client.customFetch] = mtlsFetch({ key, cert, ca }) as never;
      const token = await client.clientCredentialsGrant(config, { resource: `${issuer}/mcp/mtls-demo` });

      const post = (origin: string, body: unknown, extra: Record<string, string> = {}) => {
        const init = { method: 'POST', headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra }, body: JSON.stringify(body) };
        return origin === mtlsOrigin ? mtlsFetch({ key, cert, ca })(`${origin}/mcp/mtls-demo`, init) : fetch(`${origin}/mcp/mtls-demo`, init);
      };
      const init = await post(mtlsOrigin, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mtls-agent', version: '1' } } });
      expect(init.status).toBe(200);
      const session = init.headers.get('mcp-session-id')!;
      const call = await post(mtlsOrigin, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'over mTLS' } } }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(call.status).toBe(200);
      expect(await call.text()).toContain('echo: over mTLS');
      // The same token on the plain listener, without the certificate it is bound to.
      const stolen = await post(issuer, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'stolen' } } }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' });
      expect(stolen.status).toBe(401);
      expect(((await stolen.json()) as { code: string }).code).toBe('MTLS_CERTIFICATE_REQUIRED');
    } finally {
      await upstream.close();
    }
  });
});
