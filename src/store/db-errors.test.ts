import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { toMandateError } from '../server/problem.ts';
import { dbErrorKind } from './db-errors.ts';
import { isStoreUnreachable } from './unavailable.ts';
import type { Store } from './store.ts';

/** The error a real query raises on a real store (the embedded one passes it back from its worker thread). */
async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error('the query was expected to fail');
}

describe.each(BACKENDS)('database errors are classified by the driver code, never the message (%s)', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await openTestStore(backend));
    await sql`create table err_parent (id text primary key, name text unique)`.execute(store.db);
    await sql`create table err_child (id text primary key, parent text references err_parent (id))`.execute(store.db);
    await sql`insert into err_parent (id, name) values ('p1', 'one')`.execute(store.db);
  });
  afterAll(async () => close());

  it('a unique key, a primary key and a foreign key violation are CONFLICT, CONFLICT and REFERENCE_INVALID', async () => {
    const unique = await failure(() => sql`insert into err_parent (id, name) values ('p2', 'one')`.execute(store.db));
    const primary = await failure(() => sql`insert into err_parent (id, name) values ('p1', 'two')`.execute(store.db));
    const foreign = await failure(() => sql`insert into err_child (id, parent) values ('c1', 'nobody')`.execute(store.db));
    expect([unique, primary, foreign].map(dbErrorKind)).toEqual(['unique_violation', 'unique_violation', 'foreign_key_violation']);
    expect([unique, primary, foreign].map((e) => [toMandateError(e).code, toMandateError(e).status])).toEqual([
      ['CONFLICT', 409],
      ['CONFLICT', 409],
      ['REFERENCE_INVALID', 422],
    ]);
  });

  it('an error whose message merely reads like a constraint is an internal error, not a 409 hiding a bug', async () => {
    // PostgreSQL echoes a rejected value in its message; SQLite echoes a table name. Either can carry
    // the words the old message regex looked for (`duplicate key value`, `UNIQUE constraint`).
    const echoed = await failure(() =>
      backend === 'postgres' ? sql`select cast(${'duplicate key value violates unique constraint'} as integer)`.execute(store.db) : sql`select * from "UNIQUE constraint failed"`.execute(store.db),
    );
    expect(dbErrorKind(echoed)).toBeUndefined();
    expect(toMandateError(echoed)).toMatchObject({ code: 'INTERNAL', status: 500 });
  });

  it('an error that only says "database is locked" is not an outage: a 500, not a 503 to retry for ever', async () => {
    // A trigger's (or a function's) own message can read like SQLite's outage messages; only SQLite's
    // result code (SQLITE_BUSY, IOERR, FULL) says the store is unusable.
    const raised = await failure(() =>
      backend === 'postgres'
        ? sql`do $$ begin raise exception 'database is locked'; end $$`.execute(store.db)
        : (async () => {
            await sql`create trigger err_locked before insert on err_child begin select raise(abort, 'database is locked'); end`.execute(store.db);
            await sql`insert into err_child (id, parent) values ('c2', 'p1')`.execute(store.db);
          })(),
    );
    expect((raised as Error).message).toContain('database is locked');
    expect(isStoreUnreachable(raised)).toBe(false);
    expect(toMandateError(raised)).toMatchObject({ code: 'INTERNAL', status: 500 });
  });

  // PostgreSQL only (not a skipped test on SQLite, which has no server language).
  if (backend === 'postgres') {
    it('a unique violation reported in another language (lc_messages) is still a CONFLICT', async () => {
      // What a server with a non-English lc_messages says: SQLSTATE 23505, a message the regex never matched.
      const localized = await failure(() => sql`do $$ begin raise unique_violation using message = 'doppelter Schlüsselwert verletzt Unique-Constraint'; end $$`.execute(store.db));
      expect(toMandateError(localized)).toMatchObject({ code: 'CONFLICT', status: 409 });
    });
  }
});
