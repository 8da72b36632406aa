import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { Store, tryLease } from '../store/index.ts';
import { Scheduler } from './scheduler.ts';

describe.each(BACKENDS)('scheduled jobs on %s', (backend) => {
  let first: Awaited<ReturnType<typeof openTestStore>>;
  let second: Store;
  beforeAll(async () => {
    first = await openTestStore(backend);
    second = await Store.open(first.db.options);
  });
  afterAll(async () => {
    await second.close();
    await first.close();
  });

  it('a job runs on exactly one replica while its lease holds, and moves when the holder stops', async () => {
    const runs: string[] = [];
    const a = new Scheduler(first.store, pino({ level: 'silent' }));
    const b = new Scheduler(second, pino({ level: 'silent' }));
    a.add({ name: 'detect', everyMs: 60_000, run: async () => runs.push('a') });
    b.add({ name: 'detect', everyMs: 60_000, run: async () => runs.push('b') });
    expect(await a.runOnce('detect')).toBe(true);
    expect(await b.runOnce('detect')).toBe(false);
    expect(await a.runOnce('detect')).toBe(true);
    await a.stop();
    expect(await b.runOnce('detect')).toBe(true);
    expect(runs).toEqual(['a', 'a', 'b']);
    await b.stop();
  });

  it('an expired lease can be taken by another holder; a live one cannot', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(await tryLease(first.store, 'x', 'one', 1000, now)).toBe(true);
    expect(await tryLease(first.store, 'x', 'two', 1000, new Date(now.getTime() + 500))).toBe(false);
    expect(await tryLease(first.store, 'x', 'two', 1000, new Date(now.getTime() + 1500))).toBe(true);
    // Concurrent claims: exactly one wins.
    const later = new Date(now.getTime() + 10_000);
    const results = await Promise.all(['p', 'q', 'r', 's'].map((holder) => tryLease(holder === 'p' || holder === 'q' ? first.store : second, 'y', holder, 1000, later)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });
});
