import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayProxy, ProxyRequest } from '../gateway/index.ts';
import { mcpListener } from './mcp-listener.ts';

/** `/mcp/{server}` on a real Node server, with a stand-in for the proxy (security review 3). */
let server: Server | undefined;

async function serve(handle: (request: ProxyRequest) => Promise<Response>): Promise<number> {
  const listener = mcpListener({ proxy: { handle } as unknown as GatewayProxy, maxBodyBytes: 1024, logger: pino({ level: 'silent' }) });
  server = createServer((req, res) => {
    if (!listener(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Sends `raw` and returns what comes back until the server closes the connection. */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('mcp listener', () => {
  it('a body the client abandoned before the proxy reads it ends the read (REQUEST_ABORTED), it does not hang', async () => {
    let outcome: string | undefined;
    const port = await serve(async (request) => {
      // The proxy reads the body only after authenticating: the client is gone by then.
      await sleep(150);
      try {
        await request.text();
        outcome = 'read';
      } catch (error) {
        outcome = (error as { code?: string }).code ?? 'error';
      }
      return new Response(null, { status: 204 });
    });
    const socket = connect(port, '127.0.0.1', () => socket.write('POST /mcp/demo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"half":'));
    await sleep(30);
    socket.destroy();
    await sleep(400);
    expect(outcome).toBe('REQUEST_ABORTED');
  });

  it('a whole body whose client left before the proxy reads it also ends the read', async () => {
    let outcome: string | undefined;
    const port = await serve(async (request) => {
      await sleep(150);
      outcome = await request.text().then(
        () => 'read',
        (error: { code?: string }) => error.code ?? 'error',
      );
      return new Response(null, { status: 204 });
    });
    const socket = connect(port, '127.0.0.1', () => socket.write('POST /mcp/demo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}'));
    await sleep(30);
    socket.destroy();
    await sleep(400);
    expect(['read', 'REQUEST_ABORTED']).toContain(outcome);
  });

  it('an answer Node cannot write is a 500, not an unhandled rejection', async () => {
    // A header value WHATWG Headers accept but Node's writeHead refuses (a control character).
    const port = await serve(async () => new Response('{}', { headers: { 'x-odd': 'a\u0001b' } }));
    const answer = await exchange(port, 'GET /mcp/demo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 500 /);
    expect(answer).toContain('"code":"INTERNAL"');
  });
});
