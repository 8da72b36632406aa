import { LOCKS } from './locks.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Kysely, Migrator, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { MandateError } from '../core/errors.ts';
import { ChangeEvents, type ChangeEvent } from './events.ts';
import { guardedPool, stderrLogger, type StoreLogger } from './pg-pool.ts';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';
import { WorkerSqliteDialect } from './sqlite-driver.ts';
import { retryWhenAnotherSchemaVanishes } from './vanished-schema.ts';
import { advisoryLock, advisoryUnlock } from './advisory-lock.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface StoreOptions {
  /** PostgreSQL connection string; when absent the embedded SQLite store in `dataDir` is used. */
  databaseUrl?: string | undefined;
  dataDir: string;
  /** Listen for other replicas' change events (PostgreSQL only). Off for one-shot CLI commands. */
  listen?: boolean;
  /** PostgreSQL schema to use (search_path); lets tests and tenants share one database. */
  schema?: string | undefined;
  /** Where connection failures and failing change-event subscribers are reported (standard error if absent). */
  logger?: StoreLogger | undefined;
}

export interface Tx {
  db: Transaction<Database>;
  /** Announces a change to every replica once (and only if) the transaction commits. */
  publish(topic: string, data: Record<string, unknown>): void;
}

// Arbitrary constants naming Mandate's advisory locks (pg_advisory_*).
export const LOCK_MIGRATIONS = LOCKS.migrations;
export const LOCK_AUDIT_CHAIN = LOCKS.auditChain;

// PostgreSQL returns int8 as a string to avoid precision loss; our bigints (audit sequence numbers)
// stay far below 2^53.
pg.types.setTypeParser(20, (value: string) => Number(value));

/** The embedded store's database thread, for work done next to the data (sqlite-worker.ts). */
export interface EmbeddedProcedures {
  /** Runs `procedure` in a transaction of its own; `payload` is made once it holds the connection. */
  runProcedure<T>(procedure: URL, payload: () => unknown): Promise<T>;
}

export class Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Only on the embedded store. */
  readonly embedded: EmbeddedProcedures | undefined;
  readonly events: ChangeEvents;
  /** Distinguishes this process's notifications from other replicas'. */
  readonly origin = randomUUID();
  #listener: pg.Client | undefined;
  #databaseUrl: string | undefined;
  #schema: string | undefined;
  /** NOTIFY channels are database-wide: one per schema keeps two Mandates on one database apart. */
  readonly #channel: string;
  #closed = false;
  readonly #logger: StoreLogger;
  /** Consecutive failed attempts to re-establish the LISTEN connection (sets the backoff). */
  #listenFailures = 0;

  private constructor(db: Kysely<Database>, dialect: Dialect, options: { databaseUrl?: string; schema?: string | undefined; embedded?: EmbeddedProcedures; logger: StoreLogger }) {
    const { databaseUrl, schema } = options;
    this.#logger = options.logger;
    this.events = new ChangeEvents(options.logger);
    this.db = db;
    this.dialect = dialect;
    this.embedded = options.embedded;
    this.#databaseUrl = databaseUrl;
    this.#schema = schema;
    this.#channel = schema ? `mandate_events_${schema}` : 'mandate_events';
  }

  static async open(options: StoreOptions): Promise<Store> {
    let store: Store;
    const logger = options.logger ?? stderrLogger;
    if (options.databaseUrl) {
      if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,40}$/.test(options.schema)) {
        throw new MandateError('CONFIG_INVALID', `invalid PostgreSQL schema name: ${options.schema}`);
      }
      const pool = guardedPool({ ...pgConfig(options.databaseUrl, options.schema), max: 10 }, logger);
      store = new Store(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres', { databaseUrl: options.databaseUrl, schema: options.schema, logger });
    } else {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      const dialect = new WorkerSqliteDialect(join(options.dataDir, 'mandate.db'));
      store = new Store(new Kysely<Database>({ dialect }), 'sqlite', { embedded: dialect, logger });
    }
    try {
      await sql`select 1`.execute(store.db);
    } catch (error) {
      await store.close();
      const cause = (error as Error).cause instanceof Error ? ((error as Error).cause as Error) : (error as Error);
      throw new MandateError('STORE_UNAVAILABLE', `cannot reach the database: ${cause.message}`, 503);
    }
    if (options.listen && store.dialect === 'postgres') await store.#listen();
    return store;
  }

  /** Applies pending migrations. Safe when several replicas start at once: one migrates, the others wait. */
  async migrate(): Promise<string[]> {
    return this.db.connection().execute(async (connection) => {
      if (this.dialect === 'postgres') await advisoryLock(connection, LOCK_MIGRATIONS);
      try {
        // Domains land their migrations independently, so a lower number may arrive after a higher one ran.
        // Kysely looks for its bookkeeping tables in every schema unless told which one: another
        // Mandate (or test) schema in the same database would make it skip creating ours.
        const migrationTableSchema = this.dialect === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(connection)).rows[0]?.schema : undefined;
        const migrator = new Migrator({ db: connection, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true, ...(migrationTableSchema && { migrationTableSchema }) });
        return await retryWhenAnotherSchemaVanishes(async () => {
          const { error, results } = await migrator.migrateToLatest();
          if (error) throw new MandateError('STORE_MIGRATION_FAILED', `migration failed: ${(error as Error).message}`, 500);
          return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
        }, this.#schema);
      } finally {
        if (this.dialect === 'postgres') await advisoryUnlock(connection, LOCK_MIGRATIONS);
      }
    });
  }

  /**
   * Runs `work` in one transaction. Events it publishes reach this process right after the commit and
   * other replicas through NOTIFY, which PostgreSQL delivers only if the transaction commits.
   */
  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const pending: ChangeEvent[] = [];
    const result = await this.db.transaction().execute(async (trx) => {
      const value = await work({ db: trx, publish: (topic, data) => pending.push({ topic, data }) });
      if (this.dialect === 'postgres') {
        for (const event of pending) {
          const payload = JSON.stringify({ ...event, origin: this.origin });
          await sql`select pg_notify(${this.#channel}, ${payload})`.execute(trx);
        }
      }
      return value;
    });
    for (const event of pending) await this.events.deliverAndWait(event);
    return result;
  }

  async #listen(): Promise<void> {
    const client = new pg.Client({ ...pgConfig(this.#databaseUrl!, this.#schema), connectionTimeoutMillis: 5_000, keepAlive: true });
    client.on('notification', (message) => {
      if (!message.payload) return;
      try {
        const { origin, topic, data } = JSON.parse(message.payload) as ChangeEvent & { origin: string };
        if (origin !== this.origin) this.events.deliver({ topic, data });
      } catch {
        // A malformed payload cannot have come from a Mandate replica; ignore it.
      }
    });
    // Listening from the start: pg emits 'error' whenever the connection breaks, also while connecting
    // or during a query, and an 'error' without a listener ends the process.
    client.on('error', (err) => {
      // Only the live connection's first error starts a reconnection: a client that never became live
      // is handled by the failed attempt below, one error must not start two reconnection loops, and a
      // closed store has nobody left to tell.
      if (this.#listener !== client || this.#closed) return;
      this.#listener = undefined;
      this.#logger.warn({ err }, 'store: the change-event connection broke; caches are dropped and it reconnects');
      client.end().catch((error: unknown) => this.#logger.warn({ err: error }, 'store: closing the broken change-event connection failed'));
      // Notifications may have been missed: subscribers drop (or reload) what they hold.
      this.events.deliver({ topic: 'resync', data: {} });
      this.#reconnectSoon();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch (error) {
      await client.end().catch(() => undefined); // already broken: its own error is the one thrown below
      throw error;
    }
    if (this.#closed) {
      await client.end();
      return;
    }
    this.#listener = client;
  }

  /** Re-establishes LISTEN with capped exponential backoff (250 ms … 2 s) until it works or the store closes. */
  #reconnectSoon(): void {
    if (this.#closed) return;
    const delay = Math.min(250 * 2 ** this.#listenFailures, 2_000);
    setTimeout(() => {
      if (this.#closed) return;
      this.#listen().then(
        () => {
          if (this.#listenFailures > 0) this.#logger.warn({ attempts: this.#listenFailures + 1 }, 'store: the change-event connection is back');
          this.#listenFailures = 0;
          // What changed while we were away is unknown: reload everything.
          this.events.deliver({ topic: 'resync', data: {} });
        },
        (error: unknown) => {
          // Logged once, then quietly retried: the database is away and every request already says so.
          if (this.#listenFailures === 0) this.#logger.warn({ err: error }, 'store: cannot re-establish the change-event connection yet; retrying');
          this.#listenFailures++;
          this.#reconnectSoon();
        },
      );
    }, delay).unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.events.close();
    await this.#listener?.end().catch((error: unknown) => this.#logger.warn({ err: error }, 'store: closing the change-event connection failed'));
    await this.db.destroy();
  }
}

function pgConfig(connectionString: string, schema: string | undefined): pg.ClientConfig {
  return schema ? { connectionString, options: `-c search_path=${schema}` } : { connectionString };
}
