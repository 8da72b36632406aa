/**
 * Kill-switch propagation across replicas: three Mandate replicas on one PostgreSQL; an agent is
 * suspended through replica A's admin API and we measure, from A's answer, how long until replicas B
 * and C deny it (their policy decision point and token verifier both refuse). Compared in the same run
 * with the floor: a bare PostgreSQL NOTIFY round trip between two connections.
 *
 *   npm run bench:kill-switch            (MANDATE_BENCH_ROUNDS=200)
 */
import pg from 'pg';
import { PG_URL } from '../test/support/backends.ts';
import { startReplicas } from '../test/support/replicas.ts';

const ROUNDS = Number(process.env.MANDATE_BENCH_ROUNDS ?? 200);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function notifyFloor(): Promise<number[]> {
  const listener = new pg.Client({ connectionString: PG_URL });
  const sender = new pg.Client({ connectionString: PG_URL });
  await listener.connect();
  await sender.connect();
  await listener.query('LISTEN bench_floor');
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const arrived = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
    const start = performance.now();
    await sender.query(`select pg_notify('bench_floor', '${i}')`);
    await arrived;
    samples.push(performance.now() - start);
  }
  await listener.end();
  await sender.end();
  return samples.sort((a, b) => a - b);
}

const replicas = await startReplicas(3);
const owner = (await (await replicas.api(0, 'POST', '/api/v1/humans', { email: 'bench@example.com', displayName: 'Bench' })).json()) as { id: string };
const agentId = ((await (await replicas.api(0, 'POST', '/api/v1/agents', { name: 'bench-agent', ownerId: owner.id })).json()) as { id: string }).id;
await replicas.api(0, 'PUT', '/api/v1/policies', { cedar: 'permit (principal is Agent, action, resource) when { principal.status == "active" };' });
const request = { principal: { type: 'Agent', id: agentId }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: 'srv/t' } };
const others = replicas.servers.slice(1);
const denies = () => others.every((s) => s.services.pdp.decide(request).decision === 'deny');
const allows = () => others.every((s) => s.services.pdp.decide(request).decision === 'allow');

async function waitFor(condition: () => boolean): Promise<number> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > 5000) throw new Error('propagation took over 5 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
  return performance.now() - start;
}

const samples: number[] = [];
const fromRequest: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const sent = performance.now();
  const response = await replicas.api(0, 'POST', `/api/v1/agents/${agentId}/suspend`);
  if (response.status !== 200) throw new Error(`suspend failed: ${response.status}`);
  samples.push(await waitFor(denies));
  fromRequest.push(performance.now() - sent);
  await replicas.api(0, 'POST', `/api/v1/agents/${agentId}/resume`);
  await waitFor(allows);
}
samples.sort((a, b) => a - b);
fromRequest.sort((a, b) => a - b);
await replicas.stop();
const floor = await notifyFloor();

const p50 = percentile(samples, 50);
const p99 = percentile(samples, 99);
console.log(`rounds: ${ROUNDS}; suspension via replica A, until replicas B and C both deny`);
console.log(`propagation          p50 ${p50.toFixed(2)} ms   p99 ${p99.toFixed(2)} ms   max ${samples.at(-1)!.toFixed(2)} ms   (goal p99 ≤ 100 ms)`);
console.log(`from the API request  p50 ${percentile(fromRequest, 50).toFixed(2)} ms   p99 ${percentile(fromRequest, 99).toFixed(2)} ms   (includes the suspension's own transaction)`);
console.log(`bare NOTIFY floor    p50 ${percentile(floor, 50).toFixed(2)} ms   p99 ${percentile(floor, 99).toFixed(2)} ms`);
console.log(`ratio p50 to floor   ${(p50 / percentile(floor, 50)).toFixed(1)}x`);
console.log(JSON.stringify({ propagation_p50_ms: +p50.toFixed(2), propagation_p99_ms: +p99.toFixed(2), from_request_p50_ms: +percentile(fromRequest, 50).toFixed(2), from_request_p99_ms: +percentile(fromRequest, 99).toFixed(2), notify_p50_ms: +percentile(floor, 50).toFixed(2), notify_p99_ms: +percentile(floor, 99).toFixed(2) }));
