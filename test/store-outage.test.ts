import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStoredChain } from '../src/audit/index.ts';
import { Store } from '../src/store/index.ts';
import { PG_URL } from './support/backends.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';
import { freePort } from './support/ports.ts';

/**
 * PostgreSQL goes away for 20 s under light load (the database refuses connections and its backends are
 * terminated every second), while Mandate runs as its own process (`mandate serve`), as in production:
 * an unhandled rejection or an unhandled 'error' event would end it. It must stay up, allow nothing while
 * it cannot write its decision log, say 503 (with Retry-After) rather than 500, and serve again within
 * 5 s of the database's return.
 */
const CUT_MS = 20_000;
const database = `mandate_outage_${randomBytes(5).toString('hex')}`;
const databaseUrl = (() => {
  const url = new URL(PG_URL);
  url.pathname = `/${database}`;
  return url.toString();
})();
const adminToken = `mdt_admin_${randomBytes(24).toString('base64url')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'mandate-outage-'));

let child: ChildProcess;
let exited: string | undefined;
let stderr = '';
let baseUrl: string;
let upstream: { url: string; close(): Promise<void> };
/** Times (ms since epoch) at which the upstream received a tools/call. */
const upstreamCalls: number[] = [];
let agentId: string;
let clientAuth: string;

const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
};

const api = (method: string, path: string, body?: unknown) =>
  fetch(`${baseUrl}${path}`, { method, headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) });

const json = async (method: string, path: string, body?: unknown) => {
  const response = await api(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, string>;
};

const token = () =>
  fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: clientAuth },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${baseUrl}/mcp/demo` }).toString(),
  });

const decide = () => api('POST', '/access/v1/evaluation', { subject: { type: 'Agent', id: agentId }, action: { name: 'tools/call' }, resource: { type: 'Tool', id: 'demo/echo' } });

async function mcpClient(): Promise<Client> {
  const response = await token();
  const { access_token: accessToken } = (await response.json()) as { access_token: string };
  const client = new Client({ name: 'outage-agent', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp/demo`), { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } }));
  return client;
}

beforeAll(async () => {
  await admin((c) => c.query(`create database ${database}`));
  upstream = await startMinimalUpstream({
    answerCall: (_res, message) => {
      if (message.method === 'tools/call') upstreamCalls.push(Date.now());
      return false;
    },
  });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['src/cli/main.ts', 'serve', '--dev', '--port', String(port), '--data', dataDir], {
    env: { ...process.env, MANDATE_DATABASE_URL: databaseUrl, MANDATE_ADMIN_TOKEN: adminToken, MANDATE_PUBLIC_URL: baseUrl, MANDATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its log (standard output) and anything Node prints on the way out (standard error).
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.once('exit', (code, signal) => (exited = `exit code ${code}, signal ${signal}`));
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`mandate serve ended: ${exited}\n${stderr}`);
    const up = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 300) throw new Error(`mandate serve did not start\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const owner = await json('POST', '/api/v1/humans', { email: 'outage@example.com', displayName: 'Outage' });
  agentId = (await json('POST', '/api/v1/agents', { name: 'outage-agent', ownerId: owner.id })).id!;
  const client = await json('POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' });
  clientAuth = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
  await json('POST', '/api/v1/mcp/servers', { name: 'demo', url: upstream.url });
  await json('PUT', '/api/v1/policies', { cedar: `permit (principal == Agent::"${agentId}", action, resource in McpServer::"demo");\npermit (principal == Agent::"${agentId}", action == Action::"tools/call", resource);` });
}, 60_000);

afterAll(async () => {
  if (process.env.OUTAGE_STDERR) (await import('node:fs')).writeFileSync(process.env.OUTAGE_STDERR, stderr);
  await admin((c) => c.query(`alter database ${database} allow_connections true`)).catch(() => undefined);
  if (child && !exited) {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  await upstream?.close();
  await admin((c) => c.query(`drop database if exists ${database} with (force)`));
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  kind: 'tool' | 'token' | 'decision' | 'readyz';
  status: number;
  /** When the request was sent, relative to the first termination. */
  sentAt: number;
  body: string;
  retryAfter: string | null;
  contentType: string | null;
}

describe('a PostgreSQL outage', () => {
  it('is survived: nothing is allowed while the database is away, 503s say so, and service resumes within 5 s', async () => {
    // Everything works before the cut.
    const before = await mcpClient();
    expect((await before.callTool({ name: 'echo', arguments: { message: 'before' } })).content).toEqual([{ type: 'text', text: 'echo: before' }]);
    expect(await (await decide()).json()).toEqual({ decision: true });
    const { access_token: accessToken } = (await (await token()).json()) as { access_token: string };
    const sessionId = (before.transport as StreamableHTTPClientTransport).sessionId!;
    expect(upstreamCalls).toHaveLength(1);

    const answers: Answer[] = [];
    let cutAt = Number.POSITIVE_INFINITY;
    let cutting = true;
    const record = async (kind: Answer['kind'], send: () => Promise<Response>) => {
      const sentAt = Date.now() - cutAt;
      const response = await send().catch((error: unknown) => new Response(String(error), { status: 599 }));
      answers.push({ kind, status: response.status, sentAt, body: await response.text().catch(() => ''), retryAfter: response.headers.get('retry-after'), contentType: response.headers.get('content-type') });
    };
    const toolCall = () =>
      fetch(`${baseUrl}/mcp/demo`, {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'during' } } }),
      });
    // Light load: one request of each kind after another, for as long as the cut lasts.
    const load = (async () => {
      while (cutting) {
        await record('tool', toolCall);
        await record('decision', decide);
        await record('token', token);
        await record('readyz', () => fetch(`${baseUrl}/readyz`));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const terminate = () => admin((c) => c.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [database]));
      await admin((c) => c.query(`alter database ${database} allow_connections false`));
      await terminate();
      cutAt = Date.now();
      while (Date.now() - cutAt < CUT_MS) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await terminate();
        expect(exited, `mandate serve ended during the outage\n${stderr}`).toBeUndefined();
      }
    } finally {
      cutting = false;
      await load;
    }
    await admin((c) => c.query(`alter database ${database} allow_connections true`));
    const backAt = Date.now();

    expect(exited, `mandate serve ended during the outage\n${stderr}`).toBeUndefined();
    // Sent once every connection was gone: none may have been allowed.
    const during = answers.filter((a) => a.sentAt > 0);
    const seen = new Map<string, number>();
    for (const a of during) {
      const key = `${a.kind} ${a.status} ${a.retryAfter} ${a.body.slice(0, 120)}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    console.info([...seen].map(([k, n]) => `${n}× ${k}`).join('\n'));
    expect(during.length).toBeGreaterThan(20);
    expect(upstreamCalls.filter((t) => t > cutAt)).toEqual([]);
    for (const answer of during) {
      const what = `${answer.kind} at +${answer.sentAt} ms: ${answer.status} ${answer.body.slice(0, 300)}`;
      expect(answer.status, what).toBe(503);
      expect(answer.retryAfter, what).toBe('5');
      if (answer.kind !== 'token') expect(answer.contentType, what).toBe('application/problem+json');
      expect(answer.body, what).not.toMatch(/access_token|"decision":true|echo: during/);
      // The gateway cannot check the token (its status and revocations live in the store); the others say the store is away.
      if (answer.kind === 'tool') expect(JSON.parse(answer.body), what).toMatchObject({ code: 'VERIFIER_UNAVAILABLE', status: 503 });
      else if (answer.kind === 'token') expect(JSON.parse(answer.body), what).toEqual({ error: 'temporarily_unavailable', error_description: 'the database is unreachable; retry shortly' });
      else expect(JSON.parse(answer.body), what).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    }
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);

    // The database is back: a tool call, a token and a decision work again within 5 s.
    const refusedWhileRecovering: string[] = [];
    let recovered: { tool: boolean; token: boolean; decision: boolean } = { tool: false, token: false, decision: false };
    while (Date.now() - backAt < 5_000 && !(recovered.tool && recovered.token && recovered.decision)) {
      recovered = {
        // A call refused while the decision point is still rebuilding (it decides nothing until a
        // resync succeeds) is not recovered yet: try again, as a client would, within the 5 s.
        tool: recovered.tool || (await mcpClient().then(
          async (client) => {
            try {
              const result = await client.callTool({ name: 'echo', arguments: { message: 'after' } });
              return JSON.stringify(result.content) === JSON.stringify([{ type: 'text', text: 'echo: after' }]);
            } catch (error) {
              refusedWhileRecovering.push((error as Error).message);
              return false;
            } finally {
              await client.close();
            }
          },
          () => false,
        )),
        token: recovered.token || (await token().then(async (r) => r.ok && typeof ((await r.json()) as { access_token?: unknown }).access_token === 'string', () => false)),
        decision: recovered.decision || (await decide().then(async (r) => r.ok && ((await r.json()) as { decision?: unknown }).decision === true, () => false)),
      };
      if (!(recovered.tool && recovered.token && recovered.decision)) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const recoveredIn = Date.now() - backAt;
    console.info(`store outage: ${during.length} requests during the ${CUT_MS} ms cut, all 503; recovered in ${recoveredIn} ms`);
    expect(recovered).toEqual({ tool: true, token: true, decision: true });
    // A call refused while the decision point rebuilds says so (retry), not that a policy denied it.
    expect(refusedWhileRecovering.filter((m) => m.includes('denied by policy'))).toEqual([]);
    expect(recoveredIn).toBeLessThan(5_000);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
    // The session opened before the outage also works again.
    expect((await before.callTool({ name: 'echo', arguments: { message: 'again' } })).content).toEqual([{ type: 'text', text: 'echo: again' }]);
    await before.close();

    // The audit chain the outage interrupted still verifies.
    const store = await Store.open({ dataDir, databaseUrl });
    try {
        expect(await verifyStoredChain(store)).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
    expect(exited, stderr).toBeUndefined();
  }, 60_000);
});
