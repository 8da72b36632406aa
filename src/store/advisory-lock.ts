import { sql, type QueryExecutorProvider } from 'kysely';

/**
 * A transaction-scoped PostgreSQL advisory lock for `purpose` (a constant naming what it serialises),
 * optionally narrowed by `key`. Advisory locks are database-wide, so the current schema is part of the
 * lock: two Mandates in one database (or two test schemas) never wait for each other, while every
 * replica of one Mandate (same schema) still takes the same lock. Released at commit or rollback.
 */
export async function advisoryXactLock(db: QueryExecutorProvider, purpose: number, key = ''): Promise<void> {
  await sql`select pg_advisory_xact_lock(${purpose}, hashtext(current_schema() || ${`:${key}`}))`.execute(db);
}

/** The session-level form, for work that spans transactions (migrations); pair with `advisoryUnlock`. */
export async function advisoryLock(db: QueryExecutorProvider, purpose: number): Promise<void> {
  await sql`select pg_advisory_lock(${purpose}, hashtext(current_schema() || ':'))`.execute(db);
}

export async function advisoryUnlock(db: QueryExecutorProvider, purpose: number): Promise<void> {
  await sql`select pg_advisory_unlock(${purpose}, hashtext(current_schema() || ':'))`.execute(db);
}
