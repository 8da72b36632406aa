/**
 * How fast "what does this principal hold now?" is answered: GrantService.entitlementsOf (async) and
 * entitlementsOfSync, from memory, with 10,000 principals holding 5 grants each (one in five expiring),
 * next to a point SELECT of the same principal's active grants on the same SQLite store in the same run.
 *
 *   node bench/governance-entitlements.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AuditLog } from '../src/audit/index.ts';
import { Governance } from '../src/governance/index.ts';
import { KeyRing } from '../src/keys/index.ts';
import { Store } from '../src/store/index.ts';

const PRINCIPALS = 10_000;
const dir = mkdtempSync(join(tmpdir(), 'mandate-bench-gov-'));
const store = await Store.open({ dataDir: dir });
await store.migrate();
const masterKey = randomBytes(32);
const audit = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 1000 });
await audit.init();
const now = Date.now();
const rows = [];
for (let p = 0; p < PRINCIPALS; p++) {
  for (let g = 0; g < 5; g++) {
    rows.push({
      id: `gnt_${p}_${g}`,
      principal_id: `agt_${p}`,
      entitlement: g === 0 ? `role:r${p % 50}` : `tool:srv${g}/t${p % 100}`,
      kind: g === 4 ? ('jit' as const) : ('standing' as const),
      status: 'active' as const,
      request_id: null,
      granted_by: 'bench',
      reason: null,
      created_at: new Date(now).toISOString(),
      expires_at: g === 4 ? new Date(now + 3_600_000).toISOString() : null,
      ended_at: null,
      ended_by: null,
      end_reason: null,
    });
  }
}
for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('grants').values(rows.slice(i, i + 500)).execute();
const governance = new Governance(store, audit, { masterKey, maxJitSeconds: 3600, allowHttpWebhooks: true });
const loadStarted = performance.now();
await governance.start();
const loadMs = performance.now() - loadStarted;

function measure(name: string, n: number, run: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 10_000); i++) run(i);
  const started = performance.now();
  for (let i = 0; i < n; i++) run(i);
  const us = ((performance.now() - started) * 1000) / n;
  console.log(`${name.padEnd(44)} ${us.toFixed(3)} µs/call`);
  return us;
}
async function measureAsync(name: string, n: number, run: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(n, 1000); i++) await run(i);
  const started = performance.now();
  for (let i = 0; i < n; i++) await run(i);
  const us = ((performance.now() - started) * 1000) / n;
  console.log(`${name.padEnd(44)} ${us.toFixed(3)} µs/call`);
  return us;
}

console.log(`${PRINCIPALS} principals × 5 grants loaded in ${loadMs.toFixed(0)} ms`);
const sync = measure('entitlementsOfSync (memory)', 1_000_000, (i) => governance.grants.entitlementsOfSync(`agt_${i % PRINCIPALS}`));
const cedar = measure('cedarEntitlementsSync (memory, with Role parents)', 1_000_000, (i) => governance.cedarEntitlementsSync(`agt_${i % PRINCIPALS}`));
const async_ = await measureAsync('entitlementsOf (async, memory)', 200_000, (i) => governance.entitlementsOf(`agt_${i % PRINCIPALS}`));
const nowIso = new Date().toISOString();
const select = await measureAsync('point SELECT of active grants (SQLite)', 20_000, (i) =>
  store.db.selectFrom('grants').select(['entitlement', 'expires_at']).where('principal_id', '=', `agt_${i % PRINCIPALS}`).where('status', '=', 'active').where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)])).execute(),
);
governance.stop();
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ entitlements_sync_us: +sync.toFixed(3), cedar_projection_us: +cedar.toFixed(3), entitlements_async_us: +async_.toFixed(3), sqlite_select_us: +select.toFixed(3), ratio_select_vs_sync: +(select / sync).toFixed(1) }));
