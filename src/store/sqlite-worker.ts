/**
 * The embedded store's database thread. It owns the only SQLite connection, so the fsync that makes a
 * commit durable (synchronous=FULL) happens here, not on the event loop that serves requests.
 * Protocol: `{id, sql, params, begin?}` in (`begin`: open a transaction first); `{id, rows, changes,
 * lastInsertRowid, inTransaction}` or `{id, error, inTransaction}` out.
 */
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

interface Query {
  id: number;
  sql: string;
  params: (null | number | bigint | string | Uint8Array)[];
  begin?: boolean;
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

parentPort!.on('message', (message: Query | { close: true }) => {
  if ('close' in message) {
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
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
    parentPort!.postMessage({ id: message.id, error: { message: (error as Error).message, code: (error as { code?: string }).code }, inTransaction: db.isTransaction });
  }
});

parentPort!.postMessage({ ready: true });
