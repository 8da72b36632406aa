import { isMandateError, storeUnavailable } from '../core/errors.ts';
import { isSqliteUnusable } from './db-errors.ts';

// SQLSTATE classes and codes that mean "the database is not there", not "this query is wrong":
// class 08 (connection exception), 57P01-57P03 (administrator / crash shutdown, cannot connect now),
// 3D000 (the database was dropped or renamed under us), 53300 (too many connections).
const PG_CODES = /^(08...|57P0[123]|3D000|53300)$/;
// What node's sockets say when the server goes away or cannot be reached.
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// pg's own errors carry no code: a connection that ended, one that broke earlier, a pool that could not
// connect within connectionTimeoutMillis; nor does the embedded store's thread dying. (SQLite's own
// failures carry their result code: src/store/db-errors.ts.)
const MESSAGES = /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect|the database thread exited)|^database "[^"]*" is not currently accepting connections$/;

/** Whether `error` says the store is unreachable (as opposed to a bad query or a constraint). */
export function isStoreUnreachable(error: unknown): boolean {
  if (isMandateError(error)) return error.code === 'STORE_UNAVAILABLE';
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (isSqliteUnusable(error)) return true;
  if (typeof code === 'string' && (PG_CODES.test(code) || SOCKET_CODES.has(code))) return true;
  return typeof message === 'string' && MESSAGES.test(message);
}

/** `error` as STORE_UNAVAILABLE when it says the store is unreachable; otherwise unchanged. */
export function asStoreError(error: unknown): unknown {
  return isStoreUnreachable(error) && !isMandateError(error) ? storeUnavailable(error) : error;
}
