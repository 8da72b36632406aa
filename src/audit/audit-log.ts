import { CompiledQuery } from 'kysely';
import { canonicalJson } from '../core/canonical-json.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { MandateError } from '../core/errors.ts';
import { signEd25519, type KeyRing, type SigningKey } from '../keys/index.ts';
import { LOCK_AUDIT_CHAIN, type Store, type Tx } from '../store/index.ts';
import type { Database } from '../store/index.ts';
import type { Transaction } from 'kysely';
import { checkpointMessage, GENESIS_HASH, hashRecordWithDetails, type AuditInput, type AuditRecord } from './record.ts';
import { advisoryXactLock } from '../store/index.ts';

export const CHECKPOINT_KEY_PURPOSE = 'audit-checkpoint';

export interface AuditLogOptions {
  /** A signed checkpoint is written every this many events. */
  checkpointEvery: number;
  clock?: Clock;
  /** The most events one group commit writes. */
  maxBatch?: number;
}

interface Pending {
  input: AuditInput;
  resolve: (record: AuditRecord) => void;
  reject: (error: unknown) => void;
}

/**
 * The append-only, hash-chained audit log.
 *
 * Administrative changes append inside their own transaction (`appendIn`): the change and its record
 * commit together or not at all. Decisions, which are many and not tied to a write, go through
 * `append`, which group-commits whatever has queued up and resolves each caller only once its batch is
 * durable. Both paths take the same chain lock, so the chain stays one line under concurrent writers
 * and across replicas (a PostgreSQL advisory lock; SQLite serialises transactions by itself).
 */
export class AuditLog {
  readonly #store: Store;
  readonly #keys: KeyRing;
  readonly #checkpointEvery: number;
  readonly #clock: Clock;
  readonly #maxBatch: number;
  #checkpointKey: SigningKey | undefined;
  #queue: Pending[] = [];
  readonly #appendedListeners = new Set<() => void>();
  #flushing: Promise<void> | undefined;
  /**
   * The group commit's two statements, compiled once (the insert's text once per row count): building
   * them with Kysely on every batch cost more main-thread time than the rest of the append.
   */
  #tailQuery: CompiledQuery | undefined;
  readonly #insertTexts = new Map<number, string>();

  constructor(store: Store, keys: KeyRing, options: AuditLogOptions) {
    this.#store = store;
    this.#keys = keys;
    this.#checkpointEvery = options.checkpointEvery;
    this.#clock = options.clock ?? systemClock;
    this.#maxBatch = options.maxBatch ?? 2000;
  }

  /** Loads (or creates) the checkpoint signing key; call once before appending. */
  async init(): Promise<void> {
    this.#checkpointKey = await this.#keys.currentEd25519(CHECKPOINT_KEY_PURPOSE);
  }

  /** Appends within the caller's transaction. */
  async appendIn(tx: Tx, input: AuditInput): Promise<AuditRecord> {
    const [record] = await this.#write(tx.db, [input]);
    // Streams wake up when the change commits (a local event; other replicas' streams poll).
    tx.publish('audit.appended', { seq: record!.seq });
    return record!;
  }

  /** Called after appends become durable in this process (wakes audit streams without polling). */
  onAppended(listener: () => void): () => void {
    this.#appendedListeners.add(listener);
    const off = this.#store.events.on('audit.appended', listener);
    return () => {
      this.#appendedListeners.delete(listener);
      off();
    };
  }

  /** Appends on its own, group-committed with other concurrent appends; resolves once durable. */
  append(input: AuditInput): Promise<AuditRecord> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      this.#flushing ??= this.#drain();
    });
  }

  /** Resolves when everything queued so far is durable. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          const records = await this.#store.transaction(({ db }) => this.#write(db, batch.map((p) => p.input)));
          batch.forEach((pending, i) => pending.resolve(records[i]!));
          for (const listener of this.#appendedListeners) listener();
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #write(db: Transaction<Database>, inputs: AuditInput[]): Promise<AuditRecord[]> {
    if (this.#store.dialect === 'postgres') await advisoryXactLock(db, LOCK_AUDIT_CHAIN);
    this.#tailQuery ??= this.#store.db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).compile();
    const last = (await db.executeQuery<{ seq: number; hash: string }>(this.#tailQuery)).rows[0];
    let seq = last?.seq ?? 0;
    let prevHash = last?.hash ?? GENESIS_HASH;
    const ts = this.#clock.now().toISOString();
    const records: AuditRecord[] = [];
    /** The stored `details` text of each record: canonical JSON is idempotent, so the text computed once is reused for the row. */
    const detailTexts: string[] = [];
    for (const input of inputs) {
      seq += 1;
      // Round-trip details through canonical JSON so what is hashed is exactly what is stored.
      const detailText = canonicalJson(input.details ?? {});
      const details = JSON.parse(detailText) as Record<string, unknown>;
      const body = { seq, ts, actor: input.actor, action: input.action, target: input.target ?? null, outcome: input.outcome, details, prevHash };
      const record: AuditRecord = { ...body, hash: hashRecordWithDetails(body, detailText) };
      records.push(record);
      detailTexts.push(detailText);
      prevHash = record.hash;
    }
    // Insert in chunks: both dialects cap the number of bound parameters in one statement.
    for (let i = 0; i < records.length; i += 500) {
      const chunk = records.slice(i, i + 500);
      const parameters: unknown[] = [];
      chunk.forEach((r, j) => parameters.push(r.seq, r.ts, r.actor, r.action, r.target, r.outcome, detailTexts[i + j]!, r.prevHash, r.hash));
      await db.executeQuery(CompiledQuery.raw(this.#insertSql(chunk.length), parameters));
    }
    const due = records.filter((r) => r.seq % this.#checkpointEvery === 0);
    if (due.length > 0) {
      // Loaded in init(): creating it here could need a second transaction while this one holds the
      // only SQLite connection.
      const key = this.#checkpointKey;
      if (!key) throw new MandateError('AUDIT_NOT_INITIALISED', 'AuditLog.init() was not called', 500);
      for (const record of due) {
        await db
          .insertInto('audit_checkpoints')
          .values({
            seq: record.seq,
            hash: record.hash,
            signature: signEd25519(key.privateKey, checkpointMessage(record.seq, record.hash)),
            key_id: key.id,
            ts,
          })
          .execute();
      }
    }
    return records;
  }

  /** `insert into audit_events (…) values (…), …` for `rows` rows, in the store's dialect. */
  #insertSql(rows: number): string {
    let text = this.#insertTexts.get(rows);
    if (text === undefined) {
      const placeholder = { seq: 0, ts: '', actor: '', action: '', target: null, outcome: '', details: '', prev_hash: '', hash: '' };
      text = this.#store.db.insertInto('audit_events').values(Array.from({ length: rows }, () => placeholder)).compile().sql;
      this.#insertTexts.set(rows, text);
    }
    return text;
  }

  async list(after: number, limit: number): Promise<{ items: AuditRecord[]; next: number | null }> {
    const rows = await this.#store.db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(rowToRecord);
    return { items, next: rows.length > limit ? items[items.length - 1]!.seq : null };
  }
}

export function rowToRecord(row: Database['audit_events']): AuditRecord {
  return {
    seq: Number(row.seq),
    ts: row.ts,
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    details: JSON.parse(row.details) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
