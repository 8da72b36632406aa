/**
 * Latency the MCP gateway adds to a tools/call, and throughput, against the same upstream called
 * directly in the same run. The upstream is the demo MCP server (the reference SDK, Streamable HTTP,
 * SSE responses); the gateway verifies the agent's OAuth token, decides with the active Cedar policy set
 * (agent entity, tool labels, session labels), injects the upstream credential and audits every call.
 *
 *   npm run bench:gateway     (MANDATE_BENCH_CALLS=2000, MANDATE_BENCH_CONCURRENCY=16 by default)
 */
import { loadConfig } from '../src/core/config.ts';
import { spawn } from 'node:child_process';
import { serve } from '@hono/node-server';
import { fileURLToPath } from 'node:url';
import { startServer } from '../src/server/index.ts';
import { freshDatabase, type Backend } from '../test/support/backends.ts';

async function startUpstreamProcess(token: string): Promise<{ url: string; close(): Promise<void> }> {
  const module = fileURLToPath(new URL('../src/gateway/demo-upstream.ts', import.meta.url));
  const code = `const { startDemoUpstream } = await import(${JSON.stringify(module)}); const u = await startDemoUpstream({ requiredToken: ${JSON.stringify(token)} }); process.stdout.write(u.url + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.trim());
    });
    child.once('exit', (code) => reject(new Error(`upstream exited ${code}`)));
  });
  return { url, close: async () => void child.kill() };
}

/** The floor: a proxy that only relays bytes (same HTTP stack as Mandate: @hono/node-server and fetch). */
async function startBareProxy(target: string): Promise<{ url: string; close(): void }> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve(
      {
        port: 0,
        hostname: '127.0.0.1',
        fetch: async (request: Request) => {
          const headers = new Headers();
          for (const name of ['accept', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'authorization']) {
            const value = request.headers.get(name);
            if (value !== null) headers.set(name, value);
          }
          const body = request.method === 'POST' ? await request.text() : undefined;
          const answer = await fetch(target, { method: request.method, headers, ...(body !== undefined && { body }) });
          const out = new Headers(answer.headers);
          out.delete('content-length');
          out.delete('transfer-encoding');
          return new Response(answer.body, { status: answer.status, headers: out });
        },
      },
      () => resolve(s),
    );
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, close: () => void server.close() };
}

const CALLS = Number(process.env.MANDATE_BENCH_CALLS ?? 2000);
const CONCURRENCY = Number(process.env.MANDATE_BENCH_CONCURRENCY ?? 16);
const ACCEPT = 'application/json, text/event-stream';

interface Target {
  url: string;
  headers: Record<string, string>;
}

async function initialize(url: string, headers: Record<string, string>): Promise<Target> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: ACCEPT },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  await response.text();
  const session = response.headers.get('mcp-session-id');
  if (!response.ok || !session) throw new Error(`initialize failed at ${url}: ${response.status}`);
  const target = { url, headers: { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18', 'content-type': 'application/json', accept: ACCEPT } };
  await fetch(url, { method: 'POST', headers: target.headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }).then((r) => r.text());
  return target;
}

let nextId = 1;
async function call(target: Target): Promise<number> {
  const id = nextId++;
  const started = performance.now();
  const response = await fetch(target.url, { method: 'POST', headers: target.headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `m${id}` } } }) });
  const text = await response.text();
  const elapsed = performance.now() - started;
  if (!response.ok || !text.includes(`echo: m${id}`)) throw new Error(`call failed: ${response.status} ${text.slice(0, 300)}`);
  return elapsed;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function latency(direct: Target, bare: Target, gateway: Target): Promise<{ direct: number[]; bare: number[]; gateway: number[] }> {
  const d: number[] = [];
  const b: number[] = [];
  const g: number[] = [];
  // Interleaved, so all three see the same machine state.
  for (let i = 0; i < CALLS; i++) {
    d.push(await call(direct));
    b.push(await call(bare));
    g.push(await call(gateway));
  }
  const sort = (x: number[]) => x.sort((p, q) => p - q);
  return { direct: sort(d), bare: sort(b), gateway: sort(g) };
}

async function throughput(target: Target): Promise<number> {
  let remaining = CALLS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (remaining > 0) {
        remaining--;
        await call(target);
      }
    }),
  );
  return CALLS / ((performance.now() - started) / 1000);
}

/**
 * The server side of the bench, run in its own process (as the gateway runs in production): Mandate
 * with the gateway, and the bare relay. It prints `{gatewayUrl, bareUrl, accessToken}` and serves until
 * its standard input closes. The measuring client then shares no event loop (timers, garbage
 * collection, audit flushes) with what it measures.
 */
async function runServerSide(upstreamUrl: string): Promise<void> {
  const backend = (process.env.MANDATE_BENCH_BACKEND ?? 'sqlite') as Backend;
  const db = await freshDatabase(backend);
  const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir: db.options.dataDir, ...(db.options.databaseUrl && { databaseUrl: db.options.databaseUrl, databaseSchema: db.options.schema }) });
  const server = await startServer(config);
  const { services } = server;
  const owner = await services.identity.createHuman({ email: 'bench@example.com', displayName: 'Bench' }, 'bench');
  const agent = await services.identity.createIdentity('agent', { name: 'bench-agent', ownerId: owner.id }, 'bench');
  const client = await services.oauth.clients.create('agent', agent.id, { auth: 'client_secret_basic' }, 'bench');
  await services.gateway.registry.create({ name: 'demo', url: upstreamUrl, credential: { kind: 'bearer', token: 'bench-upstream-token' } }, 'bench');
  await services.gateway.registry.setToolLabels('demo', 'crm_lookup', { labels: ['private_data'] }, 'bench');
  await services.gateway.registry.setToolLabels('demo', 'send_email', { labels: ['external_sink'] }, 'bench');
  await services.gateway.settings.update({ callsPerMinute: null, maxSessions: null }, 'bench');
  await services.pdp.apply(
    `permit (principal == Agent::"${agent.id}", action == Action::"tools/call", resource in McpServer::"demo");
forbid (principal, action == Action::"tools/call", resource) when { resource has labels && resource.labels.contains("external_sink") && context.session.labels.contains("private_data") };`,
    {},
    'bench',
  );
  const resource = `${config.publicUrl}/mcp/demo`;
  const tokenResponse = await fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
  });
  const accessToken = ((await tokenResponse.json()) as { access_token: string }).access_token;
  const bareProxy = await startBareProxy(upstreamUrl);
  process.stdout.write(`${JSON.stringify({ gatewayUrl: `${server.url}/mcp/demo`, bareUrl: bareProxy.url, accessToken })}\n`);
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  bareProxy.close();
  await services.audit.flush();
  await server.close();
  await db.cleanup();
  process.exit(0);
}

async function startServerSide(upstreamUrl: string): Promise<{ gatewayUrl: string; bareUrl: string; accessToken: string; close(): void }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, MANDATE_BENCH_SERVER_SIDE: upstreamUrl } });
  const ready = await new Promise<{ gatewayUrl: string; bareUrl: string; accessToken: string }>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]!) as { gatewayUrl: string; bareUrl: string; accessToken: string });
    });
    child.once('exit', (code) => reject(new Error(`gateway process exited ${code}`)));
  });
  return { ...ready, close: () => void child.stdin!.end() };
}

if (process.env.MANDATE_BENCH_SERVER_SIDE) {
  await runServerSide(process.env.MANDATE_BENCH_SERVER_SIDE);
} else {
  const backend = process.env.MANDATE_BENCH_BACKEND ?? 'sqlite';
  // The upstream and the gateway each run in their own process, as they would on their own machines.
  const upstream = await startUpstreamProcess('bench-upstream-token');
  const serverSide = await startServerSide(upstream.url);
  try {
    const direct = await initialize(upstream.url, { authorization: 'Bearer bench-upstream-token' });
    const bare = await initialize(serverSide.bareUrl, { authorization: 'Bearer bench-upstream-token' });
    const gateway = await initialize(serverSide.gatewayUrl, { authorization: `Bearer ${serverSide.accessToken}` });
    // Warm up every path (JIT, connection pools, caches).
    for (let i = 0; i < 200; i++) {
      await call(direct);
      await call(bare);
      await call(gateway);
    }
    const lat = await latency(direct, bare, gateway);
    const directRps = await throughput(direct);
    const bareRps = await throughput(bare);
    const gatewayRps = await throughput(gateway);
    const row = (name: string, sorted: number[]) => `| ${name} | ${percentile(sorted, 50).toFixed(3)} ms | ${percentile(sorted, 99).toFixed(3)} ms |`;
    const lines = [
      `MCP gateway (${backend} store), tools/call echo, ${CALLS} sequential calls each (interleaved), then ${CALLS} calls at concurrency ${CONCURRENCY}`,
      '',
      '| path | p50 | p99 |',
      '|---|---|---|',
      row('upstream directly', lat.direct),
      row('through a bare relay (floor: same HTTP stack, no checks)', lat.bare),
      row('through the gateway', lat.gateway),
      `| added by the bare relay | ${(percentile(lat.bare, 50) - percentile(lat.direct, 50)).toFixed(3)} ms | ${(percentile(lat.bare, 99) - percentile(lat.direct, 99)).toFixed(3)} ms |`,
      `| added by the gateway | ${(percentile(lat.gateway, 50) - percentile(lat.direct, 50)).toFixed(3)} ms | ${(percentile(lat.gateway, 99) - percentile(lat.direct, 99)).toFixed(3)} ms |`,
      '',
      '| path | calls/s | ratio |',
      '|---|---|---|',
      `| upstream directly | ${directRps.toFixed(0)} | 1 |`,
      `| through a bare relay | ${bareRps.toFixed(0)} | ${(bareRps / directRps).toFixed(3)} |`,
      `| through the gateway | ${gatewayRps.toFixed(0)} | ${(gatewayRps / directRps).toFixed(3)} |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    serverSide.close();
    await upstream.close();
  }
}
