import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

// Threat model, reviews 3 and 4: MANDATE_MAX_CONNECTIONS bounds the connections a listener holds, and
// MANDATE_MAX_CONNECTIONS_PER_CLIENT those of one client address; one more is dropped on arrival, and a
// slot freed is usable again.
function limits(config: { maxConnections: number; maxConnectionsPerClient?: number }) {
  let server: TestServer;
  const open: Socket[] = [];
  beforeAll(async () => {
    server = await startTestServer('sqlite', config);
  });
  afterAll(async () => {
    for (const socket of open) socket.destroy();
    await server?.stop();
  });

  /** A raw connection (from `from`) that sends one request and reports its status line, or that it was dropped. */
  const ask = (from = '127.0.0.1'): Promise<{ socket: Socket; answer: Promise<string> }> =>
    new Promise((resolve, reject) => {
      const url = new URL(server.url);
      const socket = connect({ port: Number(url.port), host: url.hostname, localAddress: from }, () => {
        let text = '';
        const answer = new Promise<string>((done) => {
          socket.setEncoding('utf8');
          socket.on('data', (chunk: string) => {
            text += chunk;
            if (text.includes('\r\n')) done(text.slice(0, text.indexOf('\r\n')));
          });
          socket.on('error', () => done('dropped'));
          socket.on('close', () => done(text ? text.slice(0, text.indexOf('\r\n')) : 'dropped'));
        });
        // Keep-alive: the connection stays open after its answer and holds its slot.
        socket.write(`GET /healthz HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
        resolve({ socket, answer });
      });
      open.push(socket);
      socket.once('error', reject);
    });

  /** Asks until a connection is served: the server learns of a close asynchronously. */
  const askUntilServed = async (from?: string): Promise<string> => {
    let status = 'dropped';
    for (let attempt = 0; attempt < 50 && status === 'dropped'; attempt++) {
      status = await (await ask(from)).answer;
      if (status === 'dropped') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return status;
  };
  return { ask, askUntilServed };
}

describe('MANDATE_MAX_CONNECTIONS', () => {
  const { ask, askUntilServed } = limits({ maxConnections: 2 });

  it('drops a connection beyond the cap and serves again once one closes', async () => {
    const first = await ask();
    const second = await ask();
    expect(await first.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(await second.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(await (await ask()).answer).toBe('dropped');
    first.socket.destroy();
    expect(await askUntilServed()).toMatch(/^HTTP\/1\.1 200/);
  });
});

describe('MANDATE_MAX_CONNECTIONS_PER_CLIENT', () => {
  const { ask, askUntilServed } = limits({ maxConnections: 10, maxConnectionsPerClient: 2 });

  it('drops one client\'s connection beyond its share, while another client is still served', async () => {
    const first = await ask('127.0.0.1');
    const second = await ask('127.0.0.1');
    expect(await first.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(await second.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(await (await ask('127.0.0.1')).answer).toBe('dropped');
    expect(await (await ask('127.0.0.2')).answer).toMatch(/^HTTP\/1\.1 200/);
    second.socket.destroy();
    expect(await askUntilServed('127.0.0.1')).toMatch(/^HTTP\/1\.1 200/);
  });
});
