import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { AuditLog } from './audit-log.ts';
import { verifyStoredChain } from './store-source.ts';

describe.each(BACKENDS)('audit chain on %s', (backend) => {
  let store: Store;
  let audit: AuditLog;
  let close: () => Promise<void>;
  const masterKey = randomBytes(32);

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    audit = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 10 });
    await audit.init();
  });
  afterAll(() => close());

  /** Puts the log back where the tests after the first expect it: the 70 events that test wrote. */
  async function backTo70(): Promise<void> {
    await store.db.deleteFrom('audit_checkpoints').where('seq', '>', 70).execute();
    await store.db.deleteFrom('audit_events').where('seq', '>', 70).execute();
  }

  it('keeps one unbroken line under concurrent appends from two writers', async () => {
    const second = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 10 });
    await second.init();
    const appends = Array.from({ length: 60 }, (_, i) =>
      (i % 2 === 0 ? audit : second).append({ actor: 'test', action: 'test.event', target: `t${i}`, outcome: 'success', details: { i } }),
    );
    const inTransactions = Array.from({ length: 10 }, (_, i) =>
      store.transaction((tx) => audit.appendIn(tx, { actor: 'admin', action: 'admin.change', outcome: 'success', details: { i } })),
    );
    const records = await Promise.all([...appends, ...inTransactions]);
    const seqs = records.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
    const result = await verifyStoredChain(store);
    expect(result).toMatchObject({ ok: true, events: 70, checkpoints: 7 });
  });

  it('never lets timestamps go backwards along the chain, however group commits and transactions interleave', async () => {
    // Every reading of this clock is a millisecond later than the one before: the order in which the
    // writers read it is the order of their timestamps.
    let tick = Date.now() + 86_400_000;
    const clock = { now: () => new Date(tick++) };
    const grouped = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 10, clock });
    const inTx = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 10, clock });
    await grouped.init();
    await inTx.init();
    const from = (await audit.list(0, 10_000)).items.length;
    try {
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => grouped.append({ actor: 'test', action: 'ts.grouped', outcome: 'success', details: { i } })),
        ...Array.from({ length: 20 }, (_, i) => store.transaction((tx) => inTx.appendIn(tx, { actor: 'admin', action: 'ts.tx', outcome: 'success', details: { i } }))),
      ]);
      const written = (await audit.list(from, 10_000)).items;
      expect(written).toHaveLength(60);
      for (let i = 1; i < written.length; i++) expect(written[i]!.ts >= written[i - 1]!.ts).toBe(true);
    } finally {
      await backTo70();
    }
  });

  it('writes nothing when the surrounding transaction fails', async () => {
    await expect(
      store.transaction(async (tx) => {
        await audit.appendIn(tx, { actor: 'admin', action: 'doomed', outcome: 'success' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const page = await audit.list(0, 1000);
    expect(page.items.some((r) => r.action === 'doomed')).toBe(false);
  });

  it('refuses an event whose details cannot be encoded on its own, and commits the rest of its batch', async () => {
    const before = (await audit.list(0, 1000)).items.length;
    try {
      const results = await Promise.allSettled([
        audit.append({ actor: 'test', action: 'ok.1', outcome: 'success' }),
        audit.append({ actor: 'test', action: 'bad', outcome: 'success', details: { n: Number.NaN } }),
        audit.append({ actor: 'test', action: 'ok.2', outcome: 'success', details: { big: 1n } as never }),
        audit.append({ actor: 'test', action: 'ok.3', outcome: 'success' }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      const after = (await audit.list(0, 1000)).items;
      expect(after.slice(before).map((r) => r.action)).toEqual(['ok.1', 'ok.3']);
      expect((await verifyStoredChain(store)).ok).toBe(true);
    } finally {
      await backTo70();
    }
  });

  it('appends made in the same turn share one group commit (a gateway call waits for one commit, not two)', async () => {
    let commits = 0;
    const off = audit.onAppended(() => (commits += 1));
    try {
      await Promise.all([audit.append({ actor: 'test', action: 'turn.1', outcome: 'success' }), audit.append({ actor: 'test', action: 'turn.2', outcome: 'success' })]);
      expect(commits).toBe(1);
    } finally {
      off();
      await backTo70();
    }
  });

  it('writes nothing of a batch that cannot be completed (a checkpoint due without a key)', async () => {
    const uninitialised = new AuditLog(store, new KeyRing(store, masterKey), { checkpointEvery: 1 });
    await expect(uninitialised.append({ actor: 'test', action: 'needs.checkpoint', outcome: 'success' })).rejects.toThrow(/init/);
    expect((await audit.list(0, 1000)).items.some((r) => r.action === 'needs.checkpoint')).toBe(false);
    expect((await verifyStoredChain(store)).ok).toBe(true);
  });

  it('names the first altered event', async () => {
    await store.db.updateTable('audit_events').set({ outcome: 'tampered' }).where('seq', '=', 23).execute();
    expect(await verifyStoredChain(store)).toMatchObject({ ok: false, firstBadSeq: 23 });
    await store.db.updateTable('audit_events').set({ outcome: 'success' }).where('seq', '=', 23).execute();
    expect((await verifyStoredChain(store)).ok).toBe(true);
  });

  it('detects a deleted event and a forged checkpoint', async () => {
    const row = await store.db.selectFrom('audit_events').selectAll().where('seq', '=', 70).executeTakeFirstOrThrow();
    await store.db.deleteFrom('audit_events').where('seq', '=', 70).execute();
    // Event 70 carried a checkpoint: the chain now ends before it.
    expect(await verifyStoredChain(store)).toMatchObject({ ok: false, firstBadSeq: 70 });
    await store.db.insertInto('audit_events').values(row).execute();
    await sql`update audit_checkpoints set signature = ${'A'.repeat(86)} where seq = 30`.execute(store.db);
    expect(await verifyStoredChain(store)).toMatchObject({ ok: false, firstBadSeq: 30 });
  });
});
