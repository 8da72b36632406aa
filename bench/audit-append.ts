/**
 * Audit appends per second, embedded (SQLite, synchronous=FULL) and PostgreSQL, each acknowledged only
 * once durable (group commit), against the ceiling of hashing alone (canonical JSON + SHA-256 chain,
 * no storage) measured in the same run.
 *
 *   npm run bench:audit            (MANDATE_BENCH_EVENTS=20000 by default)
 */
import { randomBytes } from 'node:crypto';
import { AuditLog, GENESIS_HASH, hashRecord, type AuditInput } from '../src/audit/index.ts';
import { KeyRing } from '../src/keys/index.ts';
import { Store } from '../src/store/index.ts';
import { freshDatabase, type Backend } from '../test/support/backends.ts';

const EVENTS = Number(process.env.MANDATE_BENCH_EVENTS ?? 20_000);
const PRODUCERS = 64;

function event(i: number): AuditInput {
  return {
    actor: `agent:agt_${i % 97}`,
    action: 'tools/call',
    target: `Tool::"crm/search_${i % 13}"`,
    outcome: i % 7 === 0 ? 'deny' : 'allow',
    details: { policies: ['policy3'], latencyUs: i % 1000, args: { digest: 'sha256:9f86d081884c7d659a2feaa0c55ad015' } },
  };
}

function hashOnly(): number {
  const start = performance.now();
  let prevHash = GENESIS_HASH;
  const ts = new Date().toISOString();
  for (let i = 1; i <= EVENTS; i++) {
    const e = event(i);
    prevHash = hashRecord({ seq: i, ts, actor: e.actor, action: e.action, target: e.target ?? null, outcome: e.outcome, details: e.details ?? {}, prevHash });
  }
  return EVENTS / ((performance.now() - start) / 1000);
}

async function storeRate(backend: Backend): Promise<{ perSecond: number; singleP50Ms: number }> {
  const db = await freshDatabase(backend);
  const store = await Store.open(db.options);
  await store.migrate();
  const audit = new AuditLog(store, new KeyRing(store, randomBytes(32)), { checkpointEvery: 1000 });
  await audit.init();
  try {
    // Sequential single appends: what one caller waiting for durability sees.
    const single: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await audit.append(event(i));
      single.push(performance.now() - t);
    }
    single.sort((a, b) => a - b);
    // Many concurrent producers: the group commit shares each fsync across a batch.
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: PRODUCERS }, async () => {
        while (next < EVENTS) {
          const i = next++;
          await audit.append(event(i));
        }
      }),
    );
    const perSecond = EVENTS / ((performance.now() - start) / 1000);
    return { perSecond, singleP50Ms: single[Math.floor(single.length / 2)]! };
  } finally {
    await store.close();
    await db.cleanup();
  }
}

const ceiling = hashOnly();
const sqlite = await storeRate('sqlite');
const postgres = await storeRate('postgres');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`events: ${EVENTS}, concurrent producers: ${PRODUCERS}`);
console.log(`sha256 chain only (ceiling):   ${fmt(ceiling)} events/s`);
console.log(`embedded SQLite (durable):     ${fmt(sqlite.perSecond)} events/s  = ${(sqlite.perSecond / ceiling).toFixed(3)} of ceiling; single append p50 ${sqlite.singleP50Ms.toFixed(2)} ms`);
console.log(`PostgreSQL (durable):          ${fmt(postgres.perSecond)} events/s  = ${(postgres.perSecond / ceiling).toFixed(3)} of ceiling; single append p50 ${postgres.singleP50Ms.toFixed(2)} ms`);
console.log(JSON.stringify({ sha256_per_s: Math.round(ceiling), sqlite_per_s: Math.round(sqlite.perSecond), postgres_per_s: Math.round(postgres.perSecond), ratio_sqlite: +(sqlite.perSecond / ceiling).toFixed(3), ratio_postgres: +(postgres.perSecond / ceiling).toFixed(3) }));
