import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SseRewriter } from './sse.ts';
import { StreamedAnswer } from './streamed-answer.ts';

/** An upstream body the test feeds by hand, observed as upstream.ts observes real ones. */
function upstreamBody(): PassThrough {
  const body = new PassThrough();
  body.on('error', () => undefined);
  return body;
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** Serves one StreamedAnswer over real HTTP; resolves with its URL and a promise of `writeTo` ending. */
async function serve(answer: StreamedAnswer): Promise<{ url: string; written: Promise<void> }> {
  let settle: (p: Promise<void>) => void;
  const written = new Promise<Promise<void>>((resolve) => (settle = resolve)).then((p) => p);
  const server = createServer((_req, res) => settle(answer.writeTo(res)));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, written };
}

const sse = { 'content-type': 'text/event-stream' };

describe('StreamedAnswer', () => {
  it('relays events as they come, rewritten where the rewriter says, and runs `done` once at the end', async () => {
    const body = upstreamBody();
    let done = 0;
    const rewriter = new SseRewriter((data) => (data === '"secret"' ? '"hidden"' : undefined));
    const answer = new StreamedAnswer(200, sse, body, { rewriter, done: () => done++ });
    const { url, written } = await serve(answer);
    const response = await fetch(url);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    body.write('data: "first"\n\n');
    // The first event arrives on its own, before the upstream sends anything more (no buffering).
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: "first"\n\n');
    body.write('data: "sec');
    body.end('ret"\n\n');
    let rest = '';
    for (;;) {
      const { done: ended, value } = await reader.read();
      if (ended) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toBe('data: "hidden"\n\n');
    await written;
    expect(done).toBe(1);
  });

  it('ends a broken stream with what `broken` supplies, once', async () => {
    const body = upstreamBody();
    let done = 0;
    let broken = 0;
    const answer = new StreamedAnswer(200, sse, body, { rewriter: new SseRewriter(() => undefined), done: () => done++, broken: () => (broken++, new TextEncoder().encode('data: "broke"\n\n')) });
    const { url, written } = await serve(answer);
    const response = await fetch(url);
    body.write('data: "a"\n\n');
    setTimeout(() => body.destroy(new Error('upstream reset')), 20);
    expect(await response.text()).toBe('data: "a"\n\ndata: "broke"\n\n');
    await written;
    expect({ done, broken }).toEqual({ done: 1, broken: 1 });
  });

  it('answers with `broken` when the upstream failed before anything read it', async () => {
    const body = upstreamBody();
    body.destroy(new Error('aborted by the kill switch'));
    await new Promise((resolve) => setImmediate(resolve));
    let done = 0;
    const answer = new StreamedAnswer(200, sse, body, { done: () => done++, broken: () => new TextEncoder().encode('data: "cancelled"\n\n') });
    const { url, written } = await serve(answer);
    expect(await (await fetch(url)).text()).toBe('data: "cancelled"\n\n');
    await written;
    expect(done).toBe(1);
  });

  it('lets the upstream go when the agent hangs up mid-answer', async () => {
    const body = upstreamBody();
    let done = 0;
    const answer = new StreamedAnswer(200, sse, body, { done: () => done++ });
    const { url, written } = await serve(answer);
    await new Promise<void>((resolve) => {
      const req = httpRequest(url, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
      body.write('data: "one"\n\n');
    });
    await written;
    expect(body.destroyed).toBe(true);
    expect(done).toBe(1);
  });

  it('waits for a slow reader (back-pressure) and loses nothing', async () => {
    const body = upstreamBody();
    const answer = new StreamedAnswer(200, { 'content-type': 'application/octet-stream' }, body, { done: () => undefined });
    const { url, written } = await serve(answer);
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 64;
    const received = new Promise<number>((resolve) => {
      httpRequest(url, (res) => {
        let size = 0;
        res.pause();
        // Reads slowly, so the writer must pause the source in between.
        const timer = setInterval(() => res.read(), 2);
        res.on('readable', () => undefined);
        res.on('data', (c: Buffer) => (size += c.length));
        res.on('end', () => {
          clearInterval(timer);
          resolve(size);
        });
        res.resume();
      }).end();
    });
    let paused = false;
    for (let i = 0; i < total; i++) {
      if (!body.write(chunk)) {
        paused = true;
        await new Promise((resolve) => body.once('drain', resolve));
      }
    }
    body.end();
    expect(await received).toBe(chunk.length * total);
    await written;
    expect(paused).toBe(true);
  });

  it('cuts the connection of an agent that stops reading, and lets the upstream go', async () => {
    const body = upstreamBody();
    let done = 0;
    const answer = new StreamedAnswer(200, { 'content-type': 'application/octet-stream' }, body, { done: () => done++, stalledReaderMs: 50 });
    const { url, written } = await serve(answer);
    // Reads the headers, then nothing more.
    const req = httpRequest(url, (res) => res.pause());
    req.on('error', () => undefined);
    req.end();
    const chunk = Buffer.alloc(64 * 1024, 1);
    // Fills the agent's socket and every buffer behind it; the source then waits on back-pressure.
    const feed = setInterval(() => body.write(chunk), 1);
    try {
      await written;
    } finally {
      clearInterval(feed);
      req.destroy();
    }
    expect(body.destroyed).toBe(true);
    expect(done).toBe(1);
  });

  it('gives the same bytes as a WHATWG Response', async () => {
    const body = upstreamBody();
    let done = 0;
    const response = new StreamedAnswer(200, sse, body, { rewriter: new SseRewriter((d) => (d === '1' ? '2' : undefined)), done: () => done++ }).toResponse();
    body.end('data: 1\n\ndata: 3\n\n');
    expect(await response.text()).toBe('data: 2\n\ndata: 3\n\n');
    expect(done).toBe(1);
  });
});
