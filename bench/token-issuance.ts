/**
 * Client-credentials JWT issuance over HTTP (autocannon): Mandate's token endpoint (oidc-provider on the
 * embedded SQLite store and on PostgreSQL; RS256 JWT access tokens, client_secret_basic, each issuance audited),
 * against a bare
 * Node HTTP server answering small JSON, measured in the same run as the ceiling.
 *
 *   npm run bench:token            (MANDATE_BENCH_SECONDS=10, MANDATE_BENCH_CONNECTIONS=10 by default)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import { loadConfig } from '../src/core/config.ts';
import { startServer } from '../src/server/index.ts';
import { freshDatabase, type Backend } from '../test/support/backends.ts';

const SECONDS = Number(process.env.MANDATE_BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.MANDATE_BENCH_CONNECTIONS ?? 10);

interface Result {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
  total: number;
}

async function run(options: autocannon.Options): Promise<Result> {
  // The load generator runs in a worker thread, off the event loop of the servers it measures.
  const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, workers: 1, ...options });
  return { perSecond: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.non2xx + result.errors + result.timeouts, total: result.requests.total };
}

async function bare(): Promise<Result> {
  const body = JSON.stringify({ access_token: 'x'.repeat(600), token_type: 'Bearer', expires_in: 300 });
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    await run({ url: `http://127.0.0.1:${port}/`, duration: 2 }); // warm-up
    return await run({ url: `http://127.0.0.1:${port}/`, method: 'POST', body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  } finally {
    server.close();
  }
}

async function mandate(backend: Backend): Promise<Result> {
  const db = await freshDatabase(backend);
  const dataDir = db.options.dataDir;
  const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir, ...(db.options.databaseUrl && { databaseUrl: db.options.databaseUrl, databaseSchema: db.options.schema }) });
  const server = await startServer(config);
  try {
    const api = async (path: string, body: unknown) => {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${config.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (response.status !== 201) throw new Error(`${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as Record<string, string>;
    };
    const owner = await api('/api/v1/humans', { email: 'bench@example.com', displayName: 'Bench' });
    const agent = await api('/api/v1/agents', { name: 'bench-bot', ownerId: owner.id });
    const client = await api(`/api/v1/agents/${agent.id}/clients`, { auth: 'client_secret_basic', scopes: ['tickets:read'] });
    const request: autocannon.Options = {
      url: `${server.url}/oauth/token`,
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'tickets:read', resource: 'https://tickets.example/api' }).toString(),
    };
    await run({ ...request, duration: 2 }); // warm-up (JIT, caches)
    return await run(request);
  } finally {
    await server.close();
    await db.cleanup();
  }
}

const ceiling = await bare();
const sqlite = await mandate('sqlite');
const postgres = await mandate('postgres');
const row = (name: string, r: Result) => `| ${name} | ${Math.round(r.perSecond).toLocaleString('en')} | ${r.p50} ms | ${r.p99} ms | ${r.errors} / ${r.total} |`;
process.stdout.write(
  [
    `Token issuance, ${CONNECTIONS} connections, ${SECONDS} s each (Node ${process.version})`,
    '',
    '| server | requests/s | p50 | p99 | non-2xx or errors |',
    '|---|---|---|---|---|',
    row('bare Node HTTP, small JSON (ceiling)', ceiling),
    row('Mandate client_credentials → RS256 JWT, embedded SQLite (audited)', sqlite),
    row('Mandate client_credentials → RS256 JWT, PostgreSQL (audited)', postgres),
    '',
    `ratio Mandate / bare: SQLite ${(sqlite.perSecond / ceiling.perSecond).toFixed(3)}, PostgreSQL ${(postgres.perSecond / ceiling.perSecond).toFixed(3)}`,
    '',
  ].join('\n'),
);
if (sqlite.errors + postgres.errors > 0) process.exitCode = 1;
