import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { storeUnavailable } from '../core/errors.ts';
import { asStoreError } from './unavailable.ts';

/** What the store logs through: pino's shape, narrowed. */
export interface StoreLogger {
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
}

/** The store's default when it is given no logger (one-shot CLI commands): standard error. */
export const stderrLogger: StoreLogger = {
  warn: (object, message) => console.error(message, object),
  error: (object, message) => console.error(message, object),
};

// A request waits at most this long for a connection while the database is away, then gets a 503.
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The pool Kysely uses on PostgreSQL, made safe for the database going away:
 * - every client has an 'error' listener for its whole life. pg-pool listens only while a client is
 *   idle; a checked-out client whose connection is cut (even mid-query: pg emits 'error' as well as
 *   failing the query) would otherwise raise an unhandled 'error' event and end the process.
 * - connecting gives up after CONNECT_TIMEOUT_MS instead of queueing requests forever.
 * - failures that mean "unreachable" leave as STORE_UNAVAILABLE (503, Retry-After), not as raw pg errors
 *   that every caller would render as a 500.
 */
export function guardedPool(config: pg.PoolConfig, logger: StoreLogger): PostgresPool {
  const pool = new pg.Pool({ ...config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
  // An idle client broke (server restart, terminated backend): pg-pool has dropped it already.
  pool.on('error', (err) => logger.warn({ err }, 'store: an idle database connection broke; it is replaced on next use'));
  pool.on('connect', (client) => {
    client.on('error', (err) => {
      // The query running on it (if any) fails with this error and its owner answers 503; the pool
      // discards the client on release (it is no longer queryable).
      logger.warn({ err }, 'store: a database connection broke');
    });
  });
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        // Whatever stops a connection (refused, timed out, the database not accepting connections,
        // authentication rejected after a failover) leaves the store unreachable for this request.
        throw storeUnavailable(error);
      }
      let guarded = wrapped.get(client);
      if (!guarded) {
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        guarded = {
          query: ((...args: unknown[]) => {
            const result = query(...args);
            // A cursor (not used by Mandate) is returned as it is; promises fail as STORE_UNAVAILABLE.
            return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(asStoreError(error))) : result;
          }) as PostgresPoolClient['query'],
          release: () => client.release(),
        };
        wrapped.set(client, guarded);
      }
      return guarded;
    },
    end: () => pool.end(),
  };
}
