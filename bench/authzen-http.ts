/**
 * AuthZEN over HTTP: POST /access/v1/evaluation on a real Mandate (embedded store, 1,000 policies,
 * every decision written to the audit chain) against a bare Node HTTP server answering the same JSON,
 * measured in the same run with autocannon.
 *
 *   npm run bench:authzen          (MANDATE_BENCH_SECONDS=10, MANDATE_BENCH_CONNECTIONS=32)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '../src/core/config.ts';
import { startServer } from '../src/server/index.ts';

const SECONDS = Number(process.env.MANDATE_BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.MANDATE_BENCH_CONNECTIONS ?? 32);

type Result = autocannon.Result;

function run(url: string, headers: Record<string, string>, body: string): Promise<Result> {
  return autocannon({ url, method: 'POST', headers, body, connections: CONNECTIONS, duration: SECONDS });
}

const request = JSON.stringify({ subject: { type: 'User', id: 'u17' }, action: { name: 'read' }, resource: { type: 'Doc', id: 'd17' } });

// 1,000 policies: one per user/document pair, as an application with per-object grants would have.
const policies = Array.from({ length: 1000 }, (_, i) => `permit (principal == User::"u${i}", action == Action::"read", resource == Doc::"d${i}");`).join('\n');
const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir: mkdtempSync(join(tmpdir(), 'mandate-bench-authzen-')) });
const server = await startServer(config);
// An application's vocabulary (User, Doc, read), not Mandate's: applied without schema validation.
await server.services.pdp.apply(policies, { force: true }, 'bench');
const headers = { 'content-type': 'application/json', authorization: `Bearer ${config.adminToken}` };
const check = (await (await fetch(`${server.url}/access/v1/evaluation`, { method: 'POST', headers, body: request })).json()) as { decision: boolean };
if (check.decision !== true) throw new Error('the benchmark request should be permitted');

const bare = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => (body += chunk));
  req.on('end', () => {
    JSON.parse(body);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"decision":true}');
  });
});
await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/access/v1/evaluation`;

const ceiling = await run(bareUrl, headers, request);
const mandate = await run(`${server.url}/access/v1/evaluation`, headers, request);
bare.close();
await server.close();

const fmt = (r: Result) => `${Math.round(r.requests.average).toLocaleString('en-US')} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors}`;
console.log(`${SECONDS}s each, ${CONNECTIONS} connections`);
console.log(`bare Node HTTP server (ceiling): ${fmt(ceiling)}`);
console.log(`Mandate AuthZEN evaluation:      ${fmt(mandate)}  (1,000 policies, each decision durably logged)`);
console.log(`throughput ratio: ${(mandate.requests.average / ceiling.requests.average).toFixed(3)}`);
console.log(JSON.stringify({ bare_rps: Math.round(ceiling.requests.average), authzen_rps: Math.round(mandate.requests.average), authzen_p99_ms: mandate.latency.p99, bare_p99_ms: ceiling.latency.p99, ratio: +(mandate.requests.average / ceiling.requests.average).toFixed(3) }));
