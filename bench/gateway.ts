/**
 * Latency the MCP gateway adds to a tools/call, and throughput, against the same upstream called
 * directly in the same run (a minimal MCP server on node:http, or the demo server on the reference SDK;
 * Streamable HTTP, tools/call answered as SSE). The gateway verifies the agent's OAuth token, decides
 * with the active Cedar policy set (agent entity, tool labels, session labels), injects the upstream
 * credential, relays the SSE answer event by event and audits every call (the decision record durable,
 * in a group commit shared with concurrent calls, before the upstream is called). A bare relay (no checks at
 * all, node:http in, undici out) is measured too: the floor any second HTTP hop in Node costs here.
 *
 *   npm run bench:gateway
 *     MANDATE_BENCH_CALLS=5000 MANDATE_BENCH_CONCURRENCY=16 MANDATE_BENCH_BACKEND=sqlite|postgres
 *     MANDATE_BENCH_UPSTREAM=minimal|sdk MANDATE_BENCH_LAYOUT=both|single|processes
 *     MANDATE_BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof"   (extra flags for Mandate's process)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/core/config.ts';
import { startDemoUpstream } from '../src/gateway/demo-upstream.ts';
import { startMinimalUpstream } from '../test/support/minimal-upstream.ts';
import { startServer } from '../src/server/index.ts';
import { freshDatabase, type Backend } from '../test/support/backends.ts';

const UPSTREAM_TOKEN = 'bench-upstream-token';
/**
 * `minimal` (default): a bare node:http MCP server whose own latency and garbage are close to nothing,
 * so the difference between paths is the paths'. `sdk`: the demo server on the reference MCP SDK.
 */
const UPSTREAM_KIND = process.env.MANDATE_BENCH_UPSTREAM === 'sdk' ? 'sdk' : 'minimal';
/**
 * `single`: client, upstream, bare relay and Mandate in one process, one thread: what each path adds is
 * the work it does, nothing else. `processes`: each in its own process, as on their own machines; every
 * hop then also pays the operating system's cross-process wake-up, whose tail on a small VM is
 * milliseconds. `both` (default): one run of each, in that order.
 */
type Layout = 'single' | 'processes';
const LAYOUTS: Layout[] = process.env.MANDATE_BENCH_LAYOUT === 'single' ? ['single'] : process.env.MANDATE_BENCH_LAYOUT === 'processes' ? ['processes'] : ['single', 'processes'];

/**
 * Runs this file again as `role` in a child process and waits for the JSON line it announces itself
 * with. The child serves until its standard input closes; before exiting it may print one more line.
 */
async function startRole<T>(role: string, env: Record<string, string>, flags: string[] = []): Promise<{ ready: T; stop(): Promise<string | undefined> }> {
  const child: ChildProcess = spawn(process.execPath, [...flags, fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env, MANDATE_BENCH_ROLE: role } });
  const lines: string[] = [];
  let buffered = '';
  let onLine: (() => void) | undefined;
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    // Only our JSON lines: node flags such as --trace-gc print to standard output too.
    lines.push(...parts.filter((l) => l.startsWith('{"bench":')));
    onLine?.();
  });
  // 'close', not 'exit': the last line may still be in the pipe when the process has exited.
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const ready = await new Promise<T>((resolve, reject) => {
    onLine = () => {
      if (lines.length === 0) return;
      onLine = undefined;
      resolve((JSON.parse(lines.shift()!) as { bench: T }).bench);
    };
    void exited.then(() => reject(new Error(`${role} process exited before it was ready`)));
  });
  return {
    ready,
    stop: async () => {
      child.stdin!.end();
      await exited;
      return lines.length > 0 ? (JSON.parse(lines.shift()!) as { bench: string }).bench : undefined;
    },
  };
}

function announce(value: unknown): void {
  process.stdout.write(`${JSON.stringify({ bench: value })}\n`);
}

async function untilStdinCloses(): Promise<void> {
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
}

/**
 * The floor: a relay that checks nothing and copies bytes, on the leanest Node stack there is (node:http
 * in, undici `request` out over a keep-alive pool, bodies piped): what any second HTTP hop in Node costs.
 * The gateway uses the same two ends (a Node request listener for /mcp, undici towards upstreams).
 */
async function startBareProxy(target: string): Promise<{ url: string; close(): void }> {
  const pool = new Agent({ connections: null, pipelining: 1 });
  const forwarded = ['accept', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'authorization'];
  const server = createServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const name of forwarded) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const method = req.method === 'POST' || req.method === 'DELETE' ? req.method : 'GET';
    request(target, { method, headers, body: method === 'POST' ? req : null, dispatcher: pool }).then(
      (answer) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection' && name !== 'keep-alive') out[name] = value;
        res.writeHead(answer.statusCode, out);
        answer.body.pipe(res);
      },
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, close: () => void server.close() };
}

const CALLS = Number(process.env.MANDATE_BENCH_CALLS ?? 5000);
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

/**
 * The measuring client calls with undici's `request` over one keep-alive pool: WHATWG `fetch` costs
 * the client itself a few hundred microseconds and a lot of garbage per call, noise that lands on every
 * path alike but blurs the p99 of each.
 */
const clientPool = new Agent({ connections: null, pipelining: 1 });

let nextId = 1;
async function call(target: Target): Promise<number> {
  const id = nextId++;
  const started = performance.now();
  const response = await request(target.url, { method: 'POST', headers: target.headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `m${id}` } } }), dispatcher: clientPool });
  const text = await response.body.text();
  const elapsed = performance.now() - started;
  if (response.statusCode !== 200 || !text.includes(`echo: m${id}`)) throw new Error(`call failed: ${response.statusCode} ${text.slice(0, 300)}`);
  return elapsed;
}

function percentile(sorted: number[], p: number): number | undefined {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
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
 * Mandate with the gateway, set up for one agent with a permit and a data-flow forbid. Announces
 * `{gatewayUrl, accessToken}`; at the end, what its own process saw of garbage collection and
 * event-loop delay while it was measured.
 */
async function startMandate(upstreamUrl: string): Promise<{ ready: { gatewayUrl: string; accessToken: string }; stop(): Promise<string> }> {
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
  const gcPauses: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.push(entry.duration);
  });
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  gcObserver.observe({ entryTypes: ['gc'] });
  loopDelay.enable();
  return {
    ready: { gatewayUrl: `${server.url}/mcp/demo`, accessToken },
    stop: async () => {
      gcObserver.disconnect();
      loopDelay.disable();
      gcPauses.sort((a, b) => a - b);
      const total = gcPauses.reduce((a, b) => a + b, 0);
      await services.audit.flush();
      await server.close();
      await db.cleanup();
      return `${process.env.MANDATE_BENCH_ROLE === 'server' ? "Mandate's" : 'The'} process: ${gcPauses.length} GC pauses (${total.toFixed(0)} ms in all, median ${percentile(gcPauses, 50)?.toFixed(2) ?? '–'} ms, longest ${gcPauses.at(-1)?.toFixed(2) ?? '–'} ms); event-loop delay p99 ${(loopDelay.percentile(99) / 1e6).toFixed(2)} ms`;
    },
  };
}

async function startUpstream(): Promise<{ ready: { url: string }; stop(): Promise<undefined> }> {
  const upstream = UPSTREAM_KIND === 'sdk' ? await startDemoUpstream({ requiredToken: UPSTREAM_TOKEN }) : await startMinimalUpstream({ requiredToken: UPSTREAM_TOKEN });
  return { ready: { url: upstream.url }, stop: async () => void (await upstream.close()) };
}

async function startRelay(target: string): Promise<{ ready: { url: string }; stop(): Promise<undefined> }> {
  const relay = await startBareProxy(target);
  return { ready: { url: relay.url }, stop: async () => void relay.close() };
}

/** A role as a child process (the `processes` layout): announces what `start` returned, stops when its standard input closes. */
async function serveRole(start: () => Promise<{ ready: unknown; stop(): Promise<string | undefined> }>): Promise<never> {
  const role = await start();
  announce(role.ready);
  await untilStdinCloses();
  const report = await role.stop();
  if (report !== undefined) announce(report);
  process.exit(0);
}

async function runClient(layout: Layout): Promise<void> {
  const backend = process.env.MANDATE_BENCH_BACKEND ?? 'sqlite';
  const flags = process.env.MANDATE_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const single = layout === 'single';
  const upstream = single ? await startUpstream() : await startRole<{ url: string }>('upstream', {});
  const relay = single ? await startRelay(upstream.ready.url) : await startRole<{ url: string }>('relay', { MANDATE_BENCH_TARGET: upstream.ready.url });
  const mandate = single ? await startMandate(upstream.ready.url) : await startRole<{ gatewayUrl: string; accessToken: string }>('server', { MANDATE_BENCH_TARGET: upstream.ready.url }, flags);
  try {
    const direct = await initialize(upstream.ready.url, { authorization: `Bearer ${UPSTREAM_TOKEN}` });
    const bare = await initialize(relay.ready.url, { authorization: `Bearer ${UPSTREAM_TOKEN}` });
    const gateway = await initialize(mandate.ready.gatewayUrl, { authorization: `Bearer ${mandate.ready.accessToken}` });
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
    const row = (name: string, sorted: number[]) => `| ${name} | ${percentile(sorted, 50)!.toFixed(3)} ms | ${percentile(sorted, 99)!.toFixed(3)} ms |`;
    const added = (name: string, sorted: number[]) =>
      `| added by ${name} | ${(percentile(sorted, 50)! - percentile(lat.direct, 50)!).toFixed(3)} ms | ${(percentile(sorted, 99)! - percentile(lat.direct, 99)!).toFixed(3)} ms |`;
    const lines = [
      `MCP gateway (${backend} store, ${UPSTREAM_KIND} upstream, ${single ? 'all in one process' : 'one process each'}), tools/call echo, ${CALLS} sequential calls each (interleaved), then ${CALLS} calls at concurrency ${CONCURRENCY}`,
      '',
      '| path | p50 | p99 |',
      '|---|---|---|',
      row('upstream directly', lat.direct),
      row('through a bare relay (floor: a second hop, no checks)', lat.bare),
      row('through the gateway', lat.gateway),
      added('the bare relay', lat.bare),
      added('the gateway', lat.gateway),
      '',
      '| path | calls/s | ratio |',
      '|---|---|---|',
      `| upstream directly | ${directRps.toFixed(0)} | 1 |`,
      `| through a bare relay | ${bareRps.toFixed(0)} | ${(bareRps / directRps).toFixed(3)} |`,
      `| through the gateway | ${gatewayRps.toFixed(0)} | ${(gatewayRps / directRps).toFixed(3)} |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    const report = await mandate.stop();
    if (report) process.stdout.write(`\n${report}\n`);
    await relay.stop();
    await upstream.stop();
  }
}

switch (process.env.MANDATE_BENCH_ROLE) {
  case 'upstream':
    await serveRole(startUpstream);
    break;
  case 'relay':
    await serveRole(() => startRelay(process.env.MANDATE_BENCH_TARGET!));
    break;
  case 'server':
    await serveRole(() => startMandate(process.env.MANDATE_BENCH_TARGET!));
    break;
  default:
    for (const [i, layout] of LAYOUTS.entries()) {
      if (i > 0) process.stdout.write('\n');
      await runClient(layout);
    }
    process.exit(0);
}
