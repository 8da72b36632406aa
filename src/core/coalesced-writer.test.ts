import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CoalescedWriter } from './coalesced-writer.ts';

/** Serves one response written by `write`; returns the body the client got and how many writes reached the socket. */
async function serveOnce(write: (res: ServerResponse, out: CoalescedWriter) => void): Promise<{ body: string; socketWrites: number }> {
  let socketWrites = 0;
  const server = createServer((_req, res) => {
    const socket = res.socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    for (const name of ['_write', '_writev'] as const) {
      const original = socket[name].bind(socket);
      socket[name] = (...args: unknown[]) => {
        socketWrites += 1;
        original(...args);
      };
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    write(res, new CoalescedWriter(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return { body: await response.text(), socketWrites };
  } finally {
    server.close();
  }
}

describe('CoalescedWriter', () => {
  it('sends the headers, the last bytes and the end of a chunked answer in one write when the end follows a tick later', async () => {
    const result = await serveOnce((_res, out) => {
      out.write(Buffer.from('data: 1\n\n'));
      process.nextTick(() => out.end());
    });
    expect(result).toEqual({ body: 'data: 1\n\n', socketWrites: 1 });
  });

  it('loses nothing written in later turns, and each turn still leaves on its own', async () => {
    const result = await serveOnce((_res, out) => {
      out.write(Buffer.from('one\n'));
      setTimeout(() => {
        out.write(Buffer.from('two\n'));
        setTimeout(() => {
          out.write(Buffer.from('three\n'));
          process.nextTick(() => out.end());
        }, 20);
      }, 20);
    });
    expect(result).toEqual({ body: 'one\ntwo\nthree\n', socketWrites: 3 });
  });
});
