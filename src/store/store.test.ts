import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { BACKENDS, freshDatabase, openTestStore } from '../../test/support/backends.ts';
import { advisoryXactLock } from './advisory-lock.ts';
import { LOCK_AUDIT_CHAIN, Store } from './store.ts';
import { migrations } from './migrations/index.ts';

describe('store migrations', () => {
  it('three replicas starting at once on one PostgreSQL migrate exactly once, without errors', async () => {
    const db = await freshDatabase('postgres');
    const stores = await Promise.all([0, 1, 2].map(() => Store.open(db.options)));
    try {
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      // Exactly one replica applied each migration; the others found nothing to do.
      expect(applied.flat().sort()).toEqual(Object.keys(migrations).sort());
      const rows = await stores[0]!.db.selectFrom('kysely_migration' as never).selectAll().execute();
      expect(rows).toHaveLength(Object.keys(migrations).length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db.cleanup();
    }
  });

  it('the embedded store migrates once and is idempotent on restart', async () => {
    const db = await freshDatabase('sqlite');
    try {
      const first = await Store.open(db.options);
      expect(await first.migrate()).toEqual(Object.keys(migrations).sort());
      await first.close();
      const second = await Store.open(db.options);
      expect(await second.migrate()).toEqual([]);
      await second.close();
    } finally {
      await db.cleanup();
    }
  });

  it('reports an unreachable PostgreSQL as STORE_UNAVAILABLE', async () => {
    await expect(Store.open({ dataDir: '/tmp', databaseUrl: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});

describe('embedded store transactions (begin travels with the first statement)', () => {
  it('commits and rolls back whole, also when nothing ran or the first statement failed', async () => {
    const db = await freshDatabase('sqlite');
    const store = await Store.open(db.options);
    try {
      await store.migrate();
      const count = async () => Number((await store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      const row = (seq: number) => ({ seq, ts: 't', actor: 'a', action: 'x', target: null, outcome: 'o', details: '{}', prev_hash: 'p', hash: 'h' });
      // Nothing ran: commit has nothing to end.
      await store.db.transaction().execute(async () => undefined);
      // The second statement fails: the first is undone, so `begin` really opened a transaction.
      await expect(
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('audit_events').values(row(1)).execute();
          await trx.insertInto('audit_events').values(row(1)).execute();
        }),
      ).rejects.toThrow();
      expect(await count()).toBe(0);
      // The first statement fails: the rollback is not refused, and the connection is usable again.
      await expect(store.db.transaction().execute(async (trx) => void (await trx.selectFrom('no_such_table' as never).selectAll().execute()))).rejects.toThrow(/no such table/);
      await store.db.transaction().execute(async (trx) => void (await trx.insertInto('audit_events').values(row(1)).execute()));
      expect(await count()).toBe(1);
      // The first statement fails before it reaches the database thread (a parameter that cannot be
      // encoded) and the work goes on: `begin` still opens the transaction, so the rollback undoes the rest.
      await expect(
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('audit_events').values({ ...row(2), ts: new Date(Number.NaN) as unknown as string }).execute().catch(() => undefined);
          await trx.insertInto('audit_events').values(row(3)).execute();
          throw new Error('the work fails');
        }),
      ).rejects.toThrow('the work fails');
      expect(await count()).toBe(1);
      // SQLite rolls the transaction back by itself (`OR ROLLBACK`, as it does on SQLITE_FULL or an I/O
      // error) and the work catches the error and goes on: nothing after it may be kept in autocommit.
      await expect(
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('audit_events').values(row(4)).execute();
          await sql`insert or rollback into audit_events (seq, ts, actor, action, target, outcome, details, prev_hash, hash) values (1, 't', 'a', 'x', null, 'o', '{}', 'p', 'h')`.execute(trx).catch(() => undefined);
          await trx.insertInto('audit_events').values(row(5)).execute();
        }),
      ).rejects.toThrow(/rolled this transaction back/);
      expect(await count()).toBe(1);
      // The connection works normally afterwards.
      await store.db.transaction().execute(async (trx) => void (await trx.insertInto('audit_events').values(row(6)).execute()));
      expect(await count()).toBe(2);
    } finally {
      await store.close();
      await db.cleanup();
    }
  });
});

describe('advisory locks are per schema', () => {
  it('a lock held in one schema blocks the same schema only, not another Mandate in the same database', async () => {
    const [a, b] = await Promise.all([freshDatabase('postgres'), freshDatabase('postgres')]);
    const [storeA, storeA2, storeB] = await Promise.all([Store.open(a.options), Store.open(a.options), Store.open(b.options)]);
    try {
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked: () => void = () => undefined;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const holder = storeA.db.transaction().execute(async (trx) => {
        await advisoryXactLock(trx, LOCK_AUDIT_CHAIN);
        locked();
        await held;
      });
      await isLocked;
      // Another schema takes "the same" lock at once…
      await storeB.db.transaction().execute((trx) => advisoryXactLock(trx, LOCK_AUDIT_CHAIN));
      // …while another replica of the same schema waits for the holder.
      const order: string[] = [];
      const waiter = storeA2.db.transaction().execute(async (trx) => {
        await advisoryXactLock(trx, LOCK_AUDIT_CHAIN);
        order.push('replica');
      });
      // Only once the replica is really waiting on PostgreSQL (a lock not granted) is the holder released.
      for (;;) {
        const { rows } = await sql<{ n: string }>`select count(*) as n from pg_locks where locktype = 'advisory' and not granted and objid = hashtext(${a.options.schema!} || ':')::oid`.execute(storeB.db);
        if (Number(rows[0]!.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      order.push('released');
      release();
      await Promise.all([holder, waiter]);
      expect(order).toEqual(['released', 'replica']);
    } finally {
      await Promise.all([storeA.close(), storeA2.close(), storeB.close()]);
      await Promise.all([a.cleanup(), b.cleanup()]);
    }
  });
});

describe.each(BACKENDS)('case-insensitive SCIM lookups on %s', (backend) => {
  it('use an index, not a scan of the table (one lookup per branch of an `or` filter)', async () => {
    const { store, close } = await openTestStore(backend);
    try {
      if (backend === 'sqlite') {
        const plan = await sql<{ detail: string }>`explain query plan select * from humans where lower(user_name) = 'x'`.execute(store.db);
        expect(plan.rows.map((r) => r.detail).join(' ')).toContain('USING INDEX humans_user_name_lower');
        const groups = await sql<{ detail: string }>`explain query plan select * from groups where lower(display_name) = 'x'`.execute(store.db);
        expect(groups.rows.map((r) => r.detail).join(' ')).toContain('USING INDEX groups_display_name_lower');
      } else {
        // An empty table is cheapest to scan: forbid that, so the plan shows whether the index can be used.
        const plan = await store.db.connection().execute(async (db) => {
          await sql`set enable_seqscan = off`.execute(db);
          const humans = await sql<{ 'QUERY PLAN': string }>`explain select * from humans where lower(user_name) = 'x'`.execute(db);
          const groups = await sql<{ 'QUERY PLAN': string }>`explain select * from groups where lower(display_name) = 'x'`.execute(db);
          await sql`reset enable_seqscan`.execute(db);
          return [...humans.rows, ...groups.rows].map((r) => r['QUERY PLAN']).join(' ');
        });
        expect(plan).toContain('humans_user_name_lower');
        expect(plan).toContain('groups_display_name_lower');
      }
    } finally {
      await close();
    }
  });
});
