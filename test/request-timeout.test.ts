import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

// Threat model, review 3 ("slow clients"): a client that trickles a request may hold its socket only
// for MANDATE_REQUEST_TIMEOUT_SECONDS (default 30), not Node's 300 s. No timing is asserted: the test
// waits for the server to give up on the request and checks how it did.
describe('a request that is never finished', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { requestTimeoutSeconds: 1 });
  });
  afterAll(() => server?.stop());

  const trickle = (request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const url = new URL(server.url);
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(request.replace('HOST', url.host));
      });
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
    });

  it('is answered 408 and its connection closed: a body that stops, or headers that never end', async () => {
    // Announces 100 bytes, sends 10, then nothing.
    const body = await trickle(`POST /api/v1/humans HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer ${server.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":`);
    expect(body).toMatch(/^HTTP\/1\.1 408 /);
    const headers = await trickle('GET /healthz HTTP/1.1\r\nHost: HOST\r\nX-Slow: a');
    expect(headers).toMatch(/^HTTP\/1\.1 408 /);
    // Answered like every other refusal (problem+json), not Node's bare status line.
    for (const answer of [body, headers]) expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 408, code: 'REQUEST_TIMEOUT' });
    // Nothing half-sent was written.
    const humans = (await (await server.api('GET', '/api/v1/humans')).json()) as { items: unknown[] };
    expect(humans.items).toEqual([]);
  });
});
