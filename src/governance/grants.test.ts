import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BACKENDS, freshDatabase, openTestStore, type TestDatabase } from '../../test/support/backends.ts';
import { AuditLog } from '../audit/index.ts';
import { IdentityService } from '../identity/index.ts';
import { fixedClock, type Clock } from '../core/clock.ts';
import { KeyRing } from '../keys/index.ts';
import { Store } from '../store/index.ts';
import { adjustableClock } from './clock.ts';
import { Governance } from './governance.ts';

async function until(condition: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function replica(store: Store, masterKey: Uint8Array, base?: Clock) {
  const audit = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 1000 });
  await audit.init();
  const governance = new Governance(store, audit, { masterKey, maxJitSeconds: 3600, allowHttpWebhooks: true, clock: adjustableClock(base) });
  await governance.start();
  return { audit, governance, identity: new IdentityService(store, audit, { inactivityDays: 30 }) };
}

describe.each(BACKENDS)('grants on %s', (backend) => {
  let close: () => Promise<void>;
  let r: Awaited<ReturnType<typeof replica>>;
  beforeAll(async () => {
    const opened = await openTestStore(backend, true);
    close = opened.close;
    // A stopped clock: only `advance` moves governance time in this suite.
    r = await replica(opened.store, randomBytes(32), fixedClock(new Date('2026-06-01T00:00:00Z')));
  });
  afterAll(async () => {
    r.governance.stop();
    await close();
  });

  it('concurrent conflicting grants to an agent and its owner never both pass (the grant lock serialises the SoD check)', async () => {
    await r.governance.sod.createRule({ name: 'race', entitlements: ['role:maker', 'role:checker'], countDelegation: true }, 't');
    for (let round = 0; round < 10; round++) {
      const owner = await r.identity.createHuman({ email: `race-${round}-${backend}@example.com`, displayName: 'Race' }, 't');
      const agent = await r.identity.createIdentity('agent', { name: 'racer', ownerId: owner.id }, 't');
      const results = await Promise.allSettled([
        r.governance.grants.grant({ principalId: agent.id, entitlement: 'role:maker' }, 't'),
        r.governance.grants.grant({ principalId: owner.id, entitlement: 'role:checker' }, 't'),
        r.governance.grants.grant({ principalId: agent.id, entitlement: 'role:checker' }, 't'),
      ]);
      // Either the maker grant wins alone, or both checker grants do (they do not conflict with each other).
      const won = results.map((x) => x.status === 'fulfilled');
      expect([JSON.stringify([true, false, false]), JSON.stringify([false, true, true])]).toContain(JSON.stringify(won));
      for (const x of results) if (x.status === 'rejected') expect((x.reason as { code: string }).code).toBe('SOD_CONFLICT');
    }
    expect(await r.governance.sod.violations()).toEqual([]);
  });

  it('expiry is exact at read time with a moved clock, and the sweep tells listeners once', async () => {
    const person = await r.identity.createHuman({ email: `exp-${backend}@example.com`, displayName: 'Exp' }, 't');
    const heard: string[] = [];
    r.governance.onEntitlementsChanged((id) => void heard.push(id));
    const expiresAt = new Date(r.governance.clock.now().getTime() + 60_000).toISOString();
    await r.governance.grants.grant({ principalId: person.id, entitlement: 'role:temp', expiresAt }, 't');
    expect(await r.governance.entitlementsOf(person.id)).toEqual(['role:temp']);
    expect(r.governance.cedarEntitlementsSync(person.id)?.parents).toEqual([{ type: 'Role', id: 'temp' }]);
    r.governance.clock.advance(59_999);
    expect(await r.governance.entitlementsOf(person.id)).toEqual(['role:temp']);
    r.governance.clock.advance(1);
    expect(await r.governance.entitlementsOf(person.id)).toEqual([]);
    heard.length = 0;
    expect(await r.governance.grants.sweep()).toEqual([person.id]);
    expect(await r.governance.grants.sweep()).toEqual([]);
    expect(heard).toEqual([person.id]);
  });
});

describe('grants across replicas (PostgreSQL, LISTEN/NOTIFY)', () => {
  let db: TestDatabase;
  const stores: Store[] = [];
  const replicas: Awaited<ReturnType<typeof replica>>[] = [];
  beforeAll(async () => {
    db = await freshDatabase('postgres');
    const masterKey = randomBytes(32);
    for (let i = 0; i < 3; i++) {
      const store = await Store.open({ ...db.options, listen: true });
      if (i === 0) await store.migrate();
      stores.push(store);
    }
    for (const store of stores) replicas.push(await replica(store, masterKey));
  });
  afterAll(async () => {
    for (const r of replicas) r.governance.stop();
    for (const s of stores) await s.close();
    await db.cleanup();
  });

  it('a grant or revoke through one replica changes entitlementsOf on the others as soon as the change event arrives', async () => {
    const [a, b, c] = replicas as [Awaited<ReturnType<typeof replica>>, Awaited<ReturnType<typeof replica>>, Awaited<ReturnType<typeof replica>>];
    const owner = await a.identity.createHuman({ email: 'multi@example.com', displayName: 'Multi' }, 't');
    const agent = await a.identity.createIdentity('agent', { name: 'multi', ownerId: owner.id }, 't');
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const grant = await a.governance.grants.grant({ principalId: agent.id, entitlement: `tool:svc/t${i}` }, 't');
      await until(async () => (await b.governance.entitlementsOf(agent.id)).includes(`tool:svc/t${i}`) && (c.governance.cedarEntitlementsSync(agent.id)?.attrs.entitlements ?? []).includes(`tool:svc/t${i}`), 'grant on b and c');
      latencies.push(performance.now() - started);
      await a.governance.grants.revoke(grant.id, null, 't');
      // Both other replicas: the assertion below reads b, which hears of the revoke on its own schedule.
      await until(async () => !(await b.governance.entitlementsOf(agent.id)).includes(`tool:svc/t${i}`) && !(await c.governance.entitlementsOf(agent.id)).includes(`tool:svc/t${i}`), 'revoke on b and c');
    }
    latencies.sort((x, y) => x - y);
    console.log(`grant → visible on two other replicas: p50 ${latencies[10]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms (includes the grant transaction)`);
    expect(await b.governance.entitlementsOf(agent.id)).toEqual([]);
  });

  it('without any write, every replica hears of an expiry from its own timer at the expiry time', async () => {
    const [a, , c] = replicas as [Awaited<ReturnType<typeof replica>>, unknown, Awaited<ReturnType<typeof replica>>];
    const person = await a.identity.createHuman({ email: 'timer@example.com', displayName: 'Timer' }, 't');
    const heard: string[] = [];
    c.governance.onEntitlementsChanged((id) => void heard.push(id));
    const expiresAt = new Date(Date.now() + 300).toISOString();
    const grant = await a.governance.grants.grant({ principalId: person.id, entitlement: 'role:brief', expiresAt }, 't');
    await until(() => (c.governance.cedarEntitlementsSync(person.id)?.attrs.entitlements ?? []).includes('role:brief'), 'grant seen on c');
    heard.length = 0;
    await until(() => heard.includes(person.id), 'the expiry timer on c', 5_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    expect(c.governance.cedarEntitlementsSync(person.id)?.attrs.entitlements).toEqual([]);
    // Nothing was written: the row is still active until the expiry job runs, then it is marked once.
    const row = await stores[0]!.db.selectFrom('grants').select('status').where('id', '=', grant.id).executeTakeFirstOrThrow();
    expect(row.status).toBe('active');
    expect((await a.governance.grants.expireDue()).expired).toEqual([grant.id]);
    expect((await c.governance.grants.expireDue()).expired).toEqual([]);
  });
});
