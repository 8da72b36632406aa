import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, freshDatabase, type Backend, type TestDatabase } from './support/backends.ts';
import { agentSession, type GatewayHost } from './support/gateway-agent.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';
import { freePort } from './support/ports.ts';

/**
 * `kill -9` during gateway traffic (hardening finding 4): a call may reach the upstream only once the
 * record of its decision is durable. Mandate runs as a child process through the real CLI; the upstream
 * lives here and remembers every call it receives (each carries a unique message). After each kill the
 * server is started again on the same store, and every call the upstream saw must have its decision
 * record in the chain, which must still verify.
 */

const ADMIN_TOKEN = randomBytes(24).toString('hex');
const MASTER_KEY = randomBytes(32).toString('base64');
const KILLS = 3;
const WORKERS = 24;

interface Mandate {
  child: ChildProcess;
  exited: Promise<void>;
}

/** `mandate serve --dev` on a fixed port (the OAuth issuer, so tokens stay valid across restarts) and the test's store. */
async function startMandate(db: TestDatabase, port: number): Promise<Mandate> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    MANDATE_DATA_DIR: db.options.dataDir,
    MANDATE_ADMIN_TOKEN: ADMIN_TOKEN,
    MANDATE_MASTER_KEY: MASTER_KEY,
    MANDATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    MANDATE_LOG_LEVEL: 'error',
    // Four starts per store: V8's cache of compiled (and type-stripped) modules makes the later ones quicker.
    NODE_COMPILE_CACHE: join(tmpdir(), 'mandate-test-compile-cache'),
  };
  if (db.options.databaseUrl) env.MANDATE_DATABASE_URL = db.options.databaseUrl;
  if (db.options.schema) env.MANDATE_DATABASE_SCHEMA = db.options.schema;
  const child = spawn(process.execPath, ['src/cli/main.ts', 'serve', '--dev', '--port', String(port)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mandate serve exited (${child.exitCode}): ${stderr}`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { child, exited };
    if (Date.now() > deadline) throw new Error(`mandate serve did not become ready: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function host(port: number): GatewayHost {
  const url = `http://127.0.0.1:${port}`;
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  return { url, api, services: { config: { publicUrl: url } } };
}

async function initialize(url: string, accessToken: string): Promise<string> {
  const response = await fetch(`${url}/mcp/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'crash', version: '1' } } }),
  });
  await response.text();
  const sessionId = response.headers.get('mcp-session-id');
  if (!response.ok || !sessionId) throw new Error(`initialize failed: ${response.status}`);
  return sessionId;
}

/** Every event of the chain, through the admin API of the restarted server. */
async function auditEvents(server: GatewayHost): Promise<{ seq: number; action: string; outcome: string; details: Record<string, unknown> }[]> {
  const events = [];
  let after = 0;
  for (;;) {
    const page = (await (await server.api('GET', `/api/v1/audit?after=${after}&limit=1000`)).json()) as { items: { seq: number; action: string; outcome: string; details: Record<string, unknown> }[]; next: number | null };
    events.push(...page.items);
    if (page.next === null) return events;
    after = page.next;
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe.each(BACKENDS)('kill -9 during gateway traffic (%s)', (backend: Backend) => {
  it('every call that reached the upstream has its decision record after a restart, and the chain verifies, three kills in a row', async () => {
    const received = new Set<string>();
    const upstream = await startMinimalUpstream({
      answerCall: (_res, message) => {
        received.add(String(message.params?.arguments?.message));
        return false;
      },
    });
    cleanups.push(() => upstream.close());
    const db = await freshDatabase(backend);
    cleanups.push(() => db.cleanup());
    const port = await freePort();
    const server = host(port);
    let mandate = await startMandate(db, port);
    cleanups.push(async () => {
      mandate.child.kill('SIGKILL');
      await mandate.exited;
    });
    const { accessToken } = await agentSession(server, { name: 'crash', upstreamUrl: upstream.url, cedar: (id) => `permit (principal == Agent::"${id}", action, resource in McpServer::"demo");` });
    expect((await server.api('PATCH', '/api/v1/mcp/settings', { callsPerMinute: null })).status).toBe(200);

    for (let round = 0; round < KILLS; round += 1) {
      const sessionId = await initialize(server.url, accessToken);
      const headers = (accept: string) => ({ authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
      const call = (n: number) => ({ jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: 'echo', arguments: { message: `r${round}-${n}` } } });
      let next = 0;
      let answered = 0;
      const seenBefore = received.size;
      // Until the server dies under them: clients that accept SSE and clients that accept JSON only.
      const worker = async (w: number) => {
        for (let i = 0; ; i += 1) {
          const accept = (w + i) % 2 === 0 ? 'application/json, text/event-stream' : 'application/json';
          const response = await fetch(`${server.url}/mcp/demo`, { method: 'POST', headers: headers(accept), body: JSON.stringify(call(next++)) });
          await response.text();
          answered += 1;
        }
      };
      const traffic = Promise.allSettled(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      const killAt = Date.now() + 3000;
      while (received.size - seenBefore < 100 && Date.now() < killAt) await new Promise((resolve) => setTimeout(resolve, 5));
      mandate.child.kill('SIGKILL');
      await mandate.exited;
      await traffic;
      // Requests the gateway wrote before it died still arrive: let them.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(answered).toBeGreaterThan(0);

      mandate = await startMandate(db, port);
      const events = await auditEvents(server);
      const decided = new Set(events.filter((e) => e.action === 'mcp.tools/call' && e.outcome === 'allow').map((e) => (e.details.args as { message?: string } | undefined)?.message));
      const ran = [...received].filter((message) => message.startsWith(`r${round}-`));
      expect(ran.length).toBeGreaterThan(0);
      const missing = ran.filter((message) => !decided.has(message));
      expect(missing, `${missing.length} of ${ran.length} calls ran upstream without a decision record`).toEqual([]);
      const verified = (await (await server.api('GET', '/api/v1/audit/verify')).json()) as { ok: boolean };
      expect(verified.ok).toBe(true);
    }
  }, 180_000);
});
