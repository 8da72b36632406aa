import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

// Threat model, review 3 ("no cap on connections"): MANDATE_MAX_CONNECTIONS bounds the connections a
// listener holds; one more is dropped on arrival, and a slot freed is usable again.
describe('the connection cap', () => {
  let server: TestServer;
  const open: Socket[] = [];
  beforeAll(async () => {
    server = await startTestServer('sqlite', { maxConnections: 2 });
  });
  afterAll(async () => {
    for (const socket of open) socket.destroy();
    await server?.stop();
  });

  const url = () => new URL(server.url);
  /** A raw connection that sends one request and reports the status line, or that it was dropped. */
  const ask = (): Promise<{ socket: Socket; answer: Promise<string> }> =>
    new Promise((resolve, reject) => {
      const socket = connect(Number(url().port), url().hostname, () => {
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
        socket.write(`GET /healthz HTTP/1.1\r\nHost: ${url().host}\r\n\r\n`);
        resolve({ socket, answer });
      });
      socket.once('error', reject);
    });

  it('drops a connection beyond MANDATE_MAX_CONNECTIONS and serves again once one closes', async () => {
    const first = await ask();
    const second = await ask();
    open.push(first.socket, second.socket);
    expect(await first.answer).toMatch(/^HTTP\/1\.1 200/);
    expect(await second.answer).toMatch(/^HTTP\/1\.1 200/);
    const third = await ask();
    open.push(third.socket);
    expect(await third.answer).toBe('dropped');
    first.socket.destroy();
    await new Promise((resolve) => first.socket.once('close', resolve));
    // The server learns of the close asynchronously: retry until the freed slot is taken.
    let status = 'dropped';
    for (let attempt = 0; attempt < 50 && status === 'dropped'; attempt++) {
      const again = await ask();
      open.push(again.socket);
      status = await again.answer;
      if (status === 'dropped') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toMatch(/^HTTP\/1\.1 200/);
  });
});
