import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase, PG_URL } from '../../test/support/backends.ts';
import { ChangeEvents } from './events.ts';
import type { StoreLogger } from './pg-pool.ts';
import { Store } from './store.ts';

function recordingLogger(): StoreLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_o, message) => lines.push(message), error: (_o, message) => lines.push(message) };
}

describe('a store whose PostgreSQL connection is cut', () => {
  it('fails the transaction holding it with STORE_UNAVAILABLE, raises no unhandled error event, and serves the next one', async () => {
    const db = await freshDatabase('postgres');
    const logger = recordingLogger();
    const store = await Store.open({ ...db.options, logger });
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      // The connection is checked out (inside a transaction) and idle when its backend is terminated:
      // pg emits 'error' on the client, which pg-pool does not listen to while the client is out.
      const run = store.transaction(async (tx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx.db);
        await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        await sql`select 1`.execute(tx.db);
      });
      await expect(run).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
      expect((await sql<{ one: number }>`select 1 as one`.execute(store.db)).rows).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
      await store.close();
      await db.cleanup();
    }
    expect(logger.lines).toContain('store: a database connection broke');
  });
});

describe('change events', () => {
  it('a subscriber that fails is logged and reloaded by a resync once it succeeds again', async () => {
    const logger = recordingLogger();
    const events = new ChangeEvents(logger);
    let failing = true;
    const resyncs: boolean[] = [];
    events.on('thing.changed', async () => {
      if (failing) throw new Error('the database is away');
    });
    events.on('resync', async () => {
      resyncs.push(failing);
      if (failing) throw new Error('still away');
    });
    // Never rejects, whatever the subscribers do.
    await events.deliverAndWait({ topic: 'thing.changed', data: {} });
    expect(logger.lines).toEqual(['store: a change-event subscriber failed; its cache is reloaded by a resync']);
    // Retried with backoff while it keeps failing…
    await expect.poll(() => resyncs.length, { timeout: 2_000 }).toBeGreaterThanOrEqual(2);
    // …and once more after it works again, then no more.
    failing = false;
    await expect.poll(() => resyncs.at(-1), { timeout: 5_000 }).toBe(false);
    const settled = resyncs.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(resyncs).toHaveLength(settled);
    events.close();
  });
});
