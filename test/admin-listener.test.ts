import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

/** A raw request (the path exactly as written, not normalised by a client); returns the status line and body. */
function raw(base: string, path: string, token: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
  });
}

// MANDATE_ADMIN_PORT: the admin API (the kill switch among it) on a listener of its own, that agents
// cannot reach or crowd out, and that can be bound to an internal interface.
describe('the admin API on its own listener', () => {
  let server: TestServer;
  const idle: Socket[] = [];
  beforeAll(async () => {
    server = await startTestServer('sqlite', { adminPort: 0, maxConnections: 3 });
  });
  afterAll(async () => {
    for (const socket of idle) socket.destroy();
    await server?.stop();
  });

  it('serves the admin API there, and only there', async () => {
    expect(server.adminUrl).not.toBe(server.url);
    const created = await server.api('POST', '/api/v1/humans', { email: 'admin-listener@example.com', displayName: 'A' });
    expect(created.status).toBe(201);
    expect((await server.api('GET', '/api/v1/humans')).status).toBe(200);
    // On the main listener, however the path is spelt.
    for (const path of ['/api/v1/humans', '/api/v1/humans/', '//api/v1/humans', '/api/v1%2Fhumans', '/api/v1/./humans', '/api/v1', '/api/v1/openapi.json', '/API/v1/humans']) {
      const answer = await raw(server.url, path, server.adminToken);
      expect(answer.status, path).toBeGreaterThanOrEqual(400);
      expect(answer.body, path).not.toContain('admin-listener@example.com');
    }
  });

  it('its OpenAPI document names the admin listener as the server', async () => {
    const document = (await (await server.api('GET', '/api/v1/openapi.json')).json()) as { servers: { url: string }[] };
    expect(document.servers[0]!.url).toBe(server.adminUrl);
  });

  it('serves nothing else there but the probes', async () => {
    expect((await raw(server.adminUrl, '/healthz', '')).status).toBe(200);
    for (const path of ['/mcp/demo', '/oauth/token', '/.well-known/openid-configuration', '/access/v1/evaluation', '/scim/v2/Users']) {
      expect((await raw(server.adminUrl, path, server.adminToken)).status, path).toBe(404);
    }
    // The main listener still serves them.
    expect((await fetch(`${server.url}/.well-known/openid-configuration`)).status).toBe(200);
  });

  it('keeps answering the operator while agents hold every connection of the main listener', async () => {
    const main = new URL(server.url);
    // Open connections until the main listener starts dropping them.
    for (let i = 0; i < 10; i++) {
      const socket = connect(Number(main.port), main.hostname);
      socket.on('error', () => undefined);
      idle.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    expect((await raw(server.url, '/healthz', '').catch(() => ({ status: 0 }))).status).not.toBe(200);
    expect((await server.api('GET', '/api/v1/humans')).status).toBe(200);
  });
});
