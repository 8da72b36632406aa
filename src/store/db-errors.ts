/**
 * What a database error means, read from the driver's error code, never from its message (messages
 * change between versions and locales, and a message naming a constraint can be echoed from user data).
 *
 * - node:sqlite: `code: 'ERR_SQLITE_ERROR'` with `errcode`, the SQLite *extended* result code
 *   (https://sqlite.org/rescode.html); the embedded store's worker thread passes it through.
 * - PostgreSQL (pg): `code` is the SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */
export type DbErrorKind = 'unique_violation' | 'foreign_key_violation';

// SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY (a primary key is a unique key too).
const SQLITE_UNIQUE = new Set([2067, 1555]);
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
const PG_UNIQUE_VIOLATION = '23505';
const PG_FOREIGN_KEY_VIOLATION = '23503';

/** The constraint `error` reports as violated, if it is a driver's constraint error; otherwise undefined. */
export function dbErrorKind(error: unknown): DbErrorKind | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  if (code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number') {
    if (SQLITE_UNIQUE.has(errcode)) return 'unique_violation';
    if (errcode === SQLITE_CONSTRAINT_FOREIGNKEY) return 'foreign_key_violation';
    return undefined;
  }
  if (code === PG_UNIQUE_VIOLATION) return 'unique_violation';
  if (code === PG_FOREIGN_KEY_VIOLATION) return 'foreign_key_violation';
  return undefined;
}

// SQLite primary result codes (the low byte of an extended code) that mean the embedded database cannot
// be used right now rather than that the statement is wrong: SQLITE_BUSY (locked past the busy timeout,
// SQLITE_BUSY_SNAPSHOT …), SQLITE_IOERR (every disk I/O failure), SQLITE_FULL.
const SQLITE_UNUSABLE = new Set([5, 10, 13]);

/** Whether `error` is node:sqlite's saying the database is locked, failing its disk, or full. */
export function isSqliteUnusable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  return code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number' && SQLITE_UNUSABLE.has(errcode & 0xff);
}

/** Whether `error` is a unique (or primary key) violation: the row exists already. */
export function isUniqueViolation(error: unknown): boolean {
  return dbErrorKind(error) === 'unique_violation';
}
