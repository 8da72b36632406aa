import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from './support/server.ts';

/** Polls a condition (bounded), instead of sleeping for a guessed time. */
async function until(condition: () => Promise<boolean> | boolean, what: string, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

describe('audit streaming to a webhook', () => {
  let server: TestServer;
  let receiver: Server | undefined;
  beforeAll(async () => {
    server = await startTestServer('postgres', { auditStreamMaxBackoffMs: 200 });
  });
  afterAll(async () => {
    receiver?.close();
    await server.stop();
  });

  it('a receiver that is down during 1,000 events receives all of them, in order, signed, once it is back', async () => {
    const port = await freePort();
    const created = await server.api('POST', '/api/v1/audit/sinks', { name: 'siem', url: `http://127.0.0.1:${port}/hook`, batchSize: 100 });
    expect(created.status).toBe(201);
    const { secret, id } = (await created.json()) as { secret: string; id: string };
    expect(secret).toMatch(/^whsec_/);
    expect(JSON.stringify(await (await server.api('GET', '/api/v1/audit/sinks')).json())).not.toContain(secret);

    await Promise.all(Array.from({ length: 1000 }, (_, i) => server.services.audit.append({ actor: 'agent:stream', action: 'tools/call', target: `t${i}`, outcome: 'allow', details: { i } })));
    const lastSeq = (await server.services.audit.list(0, 5000)).items.at(-1)!.seq;
    // The receiver is down: the sink records the failure and does not advance.
    await until(async () => {
      const sinks = (await (await server.api('GET', '/api/v1/audit/sinks')).json()) as { items: { id: string; lastError: string | null; cursor: number }[] };
      const sink = sinks.items.find((s) => s.id === id)!;
      return sink.lastError !== null && sink.cursor === 0;
    }, 'a failed delivery');

    const received: number[] = [];
    let badSignatures = 0;
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const header = String(req.headers['mandate-signature'] ?? '');
        const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header) ?? [];
        const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
        if (v1 !== expected) badSignatures += 1;
        for (const line of body.trim().split('\n')) received.push((JSON.parse(line) as { seq: number }).seq);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(port, '127.0.0.1', resolve));

    await until(() => received.at(-1) === lastSeq, 'all events delivered');
    expect(badSignatures).toBe(0);
    expect(received).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    expect(received.length).toBeGreaterThanOrEqual(1000);
    const after = (await (await server.api('GET', '/api/v1/audit/sinks')).json()) as { items: { cursor: number; lag: number; lastError: string | null }[] };
    expect(after.items[0]).toMatchObject({ cursor: lastSeq, lastError: null });
  });

  it('refuses insecure or malformed sinks with codes', async () => {
    expect((await server.api('POST', '/api/v1/audit/sinks', { name: 'bad', url: 'ftp://x' })).status).toBe(400);
    expect((await server.api('POST', '/api/v1/audit/sinks', { name: 'siem', url: 'http://127.0.0.1:1/' })).status).toBe(409);
  });
});
