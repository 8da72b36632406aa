import { Worker } from 'node:worker_threads';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';

/**
 * Kysely dialect for the embedded store: Node's built-in `node:sqlite`, run on a worker thread
 * (sqlite-worker.ts). Built into Node 24, it needs no native add-on compiled for the exact Node ABI; on
 * its own thread, a durable commit's fsync does not stall the event loop, so while one batch is being
 * made durable the next one keeps filling (group commit) and reads from memory keep being served.
 */
export class WorkerSqliteDialect implements Dialect {
  readonly #path: string;
  #driver: WorkerSqliteDriver | undefined;

  constructor(path: string) {
    this.#path = path;
  }

  /**
   * Runs a procedure module (see sqlite-worker.ts) on the database thread, in one transaction of its
   * own, taking its turn on the connection like any query. Work that touches only the data (the audit
   * chain's hashing and inserts) then costs the request-serving thread one message, not a series of
   * round trips.
   */
  runProcedure<T>(procedure: URL, payload: () => unknown): Promise<T> {
    if (!this.#driver) throw new Error('the embedded store is not open');
    return this.#driver.runProcedure<T>(procedure, payload);
  }

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    this.#driver = new WorkerSqliteDriver(this.#path);
    return this.#driver;
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
}

type SqliteValue = null | number | bigint | string | Uint8Array;

function toSqliteValue(value: unknown): SqliteValue {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') return value;
  if (value instanceof Uint8Array) return value;
  return JSON.stringify(value);
}

interface Reply {
  id: number;
  rows: Record<string, unknown>[];
  result?: unknown;
  changes?: number | bigint;
  lastInsertRowid?: number | bigint;
  error?: { message: string; code?: string; errcode?: number };
  inTransaction?: boolean;
}

class WorkerSqliteDriver implements Driver {
  readonly #path: string;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  #connection: DatabaseConnection | undefined;
  #failure: Error | undefined;
  // SQLite has one connection: callers take turns (as Kysely's own SQLite driver does).
  #locked = false;
  readonly #waiters: (() => void)[] = [];
  #beginPending = false;
  /** Kysely opened a transaction that has not been committed or rolled back yet. */
  #txOpen = false;
  /**
   * SQLite ended that transaction on its own (an error with rollback semantics: SQLITE_FULL, IOERR,
   * `OR ROLLBACK`). Every later statement of it fails, and so does its commit: run in autocommit, they
   * would be kept although the transaction as a whole was not.
   */
  #txLost = false;
  /** Whether the database thread has a transaction open (it reports this with every answer). */
  #inTransaction = false;

  constructor(path: string) {
    this.#path = path;
  }

  async init(): Promise<void> {
    const worker = new Worker(new URL('./sqlite-worker.ts', import.meta.url), { workerData: { path: this.#path } });
    this.#worker = worker;
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: boolean }) => {
        if (message.ready) {
          worker.off('error', reject);
          resolve();
        }
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
    });
    worker.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      // An idle database thread must not keep the process alive; a waiting query must.
      if (this.#pending.size === 0) worker.unref();
      pending.resolve(reply);
    });
    // Fail closed: if the database thread dies, every waiting and later query fails.
    const fail = (error: Error) => {
      this.#failure = error;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the database thread exited (${code})`)));
    worker.unref();
    this.#connection = { executeQuery: (query) => this.#execute(query), streamQuery: () => this.#noStreaming() };
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    while (this.#locked) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#locked = true;
    return this.#connection!;
  }

  /**
   * `begin` is not sent on its own: it travels with the transaction's first statement (one round trip to
   * the database thread instead of two). The connection is held from here to commit or rollback, so
   * nothing else can slip in between.
   */
  async beginTransaction(): Promise<void> {
    this.#beginPending = true;
    this.#txOpen = true;
    this.#txLost = false;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.#txOpen = false;
    if (this.#txLost) {
      this.#txLost = false;
      throw transactionLost();
    }
    // A transaction that ran no statement never began.
    if (this.#beginPending) this.#beginPending = false;
    else await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.#txOpen = false;
    const lost = this.#txLost;
    this.#txLost = false;
    // Nothing began (no statement ran, or `begin` itself failed and was reported with the first one), or
    // SQLite already rolled it back.
    if (this.#beginPending || lost || !this.#inTransaction) {
      this.#beginPending = false;
      return;
    }
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    this.#locked = false;
    this.#waiters.shift()?.();
  }

  async destroy(): Promise<void> {
    const worker = this.#worker;
    if (!worker || this.#failure) return;
    this.#failure = new Error('the store is closed');
    worker.ref();
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.postMessage({ close: true });
      worker.once('message', () => void worker.terminate());
    });
  }

  /** `payload` is made once the connection is held: what it reads (a timestamp) is then in commit order. */
  async runProcedure<T>(procedure: URL, payload: () => unknown): Promise<T> {
    await this.acquireConnection();
    try {
      if (this.#failure) throw this.#failure;
      const reply = await this.#send({ procedure: procedure.href, payload: payload() });
      if (reply.error) throw replyError(reply.error);
      return reply.result as T;
    } finally {
      await this.releaseConnection();
    }
  }

  #send(message: Record<string, unknown>): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker!.ref();
      this.#worker!.postMessage({ id, ...message });
    });
  }

  async #execute<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#failure) throw this.#failure;
    if (this.#txLost) throw transactionLost();
    // Encoded first: a parameter that cannot be (an invalid Date) throws here, and `begin` must then stay
    // pending for the next statement, or the rest of the transaction would run without one (autocommit).
    const params = query.parameters.map(toSqliteValue);
    const begin = this.#beginPending;
    this.#beginPending = false;
    const reply = await this.#send({ sql: query.sql, params, ...(begin && { begin }) });
    this.#inTransaction = reply.inTransaction === true;
    if (this.#txOpen && !this.#inTransaction) this.#txLost = true;
    if (reply.error) throw replyError(reply.error);
    if (reply.changes === undefined) return { rows: reply.rows as R[] };
    return { rows: [], numAffectedRows: BigInt(reply.changes), insertId: BigInt(reply.lastInsertRowid ?? 0) };
  }

  // eslint-disable-next-line require-yield
  async *#noStreaming(): AsyncIterableIterator<never> {
    throw new Error('streaming queries are not supported by the embedded store');
  }
}

function replyError(reply: { message: string; code?: string; errcode?: number }): Error {
  const error = new Error(reply.message) as Error & { code?: string; errcode?: number };
  if (reply.code) error.code = reply.code;
  if (reply.errcode !== undefined) error.errcode = reply.errcode;
  return error;
}

function transactionLost(): Error {
  return new Error('the database rolled this transaction back after an error: nothing of it was kept');
}
