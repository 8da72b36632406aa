/**
 * The embedded store's database thread. It owns the only SQLite connection, so the fsync that makes a
 * commit durable (synchronous=FULL) happens here, not on the event loop that serves requests.
 * Protocol: `{id, sql, params, begin?}` in (`begin`: open a transaction first); `{id, rows, changes,
 * lastInsertRowid, inTransaction}` or `{id, error, inTransaction}` out. Or a procedure:
 * `{id, procedure, payload}` in, where `procedure` is the URL of a module exporting
 * `run(db, payload)`, run here in one transaction of its own; `{id, result, inTransaction}` out.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

interface Query {
  id: number;
  sql: string;
  params: (null | number | bigint | string | Uint8Array)[];
  begin?: boolean;
}

interface ProcedureCall {
  id: number;
  procedure: string;
  payload: unknown;
}

/** What a procedure module exports: work done on this thread, next to the data, in one transaction. */
export interface EmbeddedProcedure {
  run(db: DatabaseSync, payload: unknown): unknown;
}

const db = new DatabaseSync((workerData as { path: string }).path);
// WAL lets readers proceed during a write; synchronous=FULL makes every acknowledged commit durable.
db.exec('PRAGMA journal_mode = WAL');
db.exec('PRAGMA synchronous = FULL');
db.exec('PRAGMA foreign_keys = ON');
db.exec('PRAGMA busy_timeout = 5000');

const statements = new Map<string, ReturnType<DatabaseSync['prepare']>>();

function statementFor(sql: string): ReturnType<DatabaseSync['prepare']> {
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    // Kysely's queries are few and repeated: a bounded cache of prepared statements.
    if (statements.size > 500) statements.clear();
    statements.set(sql, statement);
  }
  return statement;
}

const procedures = new Map<string, Promise<EmbeddedProcedure>>();

async function runProcedure(message: ProcedureCall): Promise<void> {
  try {
    let module = procedures.get(message.procedure);
    if (!module) {
      module = import(message.procedure) as Promise<EmbeddedProcedure>;
      procedures.set(message.procedure, module);
    }
    const { run } = await module;
    db.exec('begin');
    try {
      const result = run(db, message.payload);
      db.exec('commit');
      parentPort!.postMessage({ id: message.id, result, inTransaction: db.isTransaction });
    } catch (error) {
      if (db.isTransaction) db.exec('rollback');
      throw error;
    }
  } catch (error) {
    parentPort!.postMessage({ id: message.id, error: errorReply(error), inTransaction: db.isTransaction });
  }
}

// Messages are handled strictly in order: a procedure's module may still be loading when the next arrives.
let previous: Promise<void> = Promise.resolve();

parentPort!.on('message', (message: Query | ProcedureCall | { close: true }) => {
  // A failure `handle` did not answer itself (a reply that cannot be sent) is answered here, and must
  // not break the chain: every later message would then wait for ever.
  previous = previous
    .then(() => handle(message))
    .catch((error: unknown) => {
      if ('id' in message) parentPort!.postMessage({ id: message.id, error: errorReply(error), inTransaction: db.isTransaction });
    });
});

async function handle(message: Query | ProcedureCall | { close: true }): Promise<void> {
  if ('close' in message) {
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  if ('procedure' in message) return runProcedure(message);
  try {
    if (message.begin) db.exec('begin');
    const statement = statementFor(message.sql);
    if (statement.columns().length > 0) {
      parentPort!.postMessage({ id: message.id, rows: statement.all(...message.params), inTransaction: db.isTransaction });
    } else {
      const result = statement.run(...message.params);
      parentPort!.postMessage({ id: message.id, rows: [], changes: result.changes, lastInsertRowid: result.lastInsertRowid, inTransaction: db.isTransaction });
    }
  } catch (error) {
    parentPort!.postMessage({ id: message.id, error: errorReply(error), inTransaction: db.isTransaction });
  }
}

parentPort!.postMessage({ ready: true });

/**
 * What crosses back to the main thread of a failed statement: the message, node's `code` and SQLite's
 * extended result code (`errcode`), which is how src/store/db-errors.ts tells a unique violation apart.
 */
function errorReply(error: unknown): { message: string; code?: string; errcode?: number } {
  const { code, errcode } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; errcode?: unknown };
  return { message: (error as Error | undefined)?.message ?? String(error), ...(typeof code === 'string' && { code }), ...(typeof errcode === 'number' && { errcode }) };
}
