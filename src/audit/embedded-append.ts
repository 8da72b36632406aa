/**
 * The audit group commit on the embedded store's database thread (a procedure, see
 * src/store/sqlite-worker.ts): read the chain's tail, hash and insert the batch, sign due checkpoints,
 * all next to the data in one transaction. The request-serving thread only encodes each event's details
 * and sends one message, where it used to make four round trips and hash every event itself.
 */
import type { KeyObject } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { chainRows, checkpointRows, type ChainEntry, type ChainTail } from './chain.ts';

export interface EmbeddedAppend {
  entries: ChainEntry[];
  ts: string;
  checkpointEvery: number;
  /** The checkpoint key's id; its private half travels once, the first time the id is used. */
  keyId: string | undefined;
  privateKey?: KeyObject;
}

/** The batch's first sequence number and every event's hash, in order. */
export interface EmbeddedAppended {
  first: number;
  hashes: string[];
}

export const EMBEDDED_APPEND = new URL(import.meta.url);

const keys = new Map<string, KeyObject>();
const prepared = new WeakMap<DatabaseSync, { tail: StatementSync; event: StatementSync; checkpoint: StatementSync }>();

function statements(db: DatabaseSync) {
  let s = prepared.get(db);
  if (!s) {
    s = {
      tail: db.prepare('select seq, hash from audit_events order by seq desc limit 1'),
      event: db.prepare('insert into audit_events (seq, ts, actor, action, target, outcome, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      checkpoint: db.prepare('insert into audit_checkpoints (seq, hash, signature, key_id, ts) values (?, ?, ?, ?, ?)'),
    };
    prepared.set(db, s);
  }
  return s;
}

export function run(db: DatabaseSync, payload: unknown): EmbeddedAppended {
  const append = payload as EmbeddedAppend;
  if (append.keyId !== undefined && append.privateKey) keys.set(append.keyId, append.privateKey);
  const s = statements(db);
  const tail = s.tail.get() as ChainTail | undefined;
  const rows = chainRows(tail, append.entries, append.ts);
  for (const r of rows) s.event.run(r.seq, r.ts, r.actor, r.action, r.target, r.outcome, r.details, r.prev_hash, r.hash);
  const privateKey = append.keyId === undefined ? undefined : keys.get(append.keyId);
  for (const c of checkpointRows(rows, append.checkpointEvery, privateKey && { id: append.keyId!, privateKey })) s.checkpoint.run(c.seq, c.hash, c.signature, c.key_id, c.ts);
  return { first: rows[0]?.seq ?? 0, hashes: rows.map((r) => r.hash) };
}
