import type { Store } from './store.ts';

/**
 * A lease: the named work (a scheduled job, an audit stream) is done by one replica at a time. Taking it
 * is two statements that are each atomic in SQLite and PostgreSQL: make sure the row exists, then claim
 * it only if it is ours already or has expired. A replica that dies simply stops renewing.
 */
export async function tryLease(store: Store, name: string, holder: string, ttlMs: number, now = new Date()): Promise<boolean> {
  await store.db
    .insertInto('job_leases')
    .values({ name, holder: '', expires_at: new Date(0).toISOString() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const result = await store.db
    .updateTable('job_leases')
    .set({ holder, expires_at: new Date(now.getTime() + ttlMs).toISOString() })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<', now.toISOString())]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Gives a lease up early (on shutdown), so another replica need not wait for it to expire. */
export async function releaseLease(store: Store, name: string, holder: string): Promise<void> {
  await store.db.updateTable('job_leases').set({ expires_at: new Date(0).toISOString() }).where('name', '=', name).where('holder', '=', holder).execute();
}
