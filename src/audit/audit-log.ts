import { CompiledQuery } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { KeyRing, SigningKey } from '../keys/index.ts';
import { LOCK_AUDIT_CHAIN, type Store, type Tx } from '../store/index.ts';
import type { AuditEventTable, Database } from '../store/index.ts';
import type { Transaction } from 'kysely';
import { chainEntry, chainRows, checkpointRows, type ChainEntry, type ChainTail } from './chain.ts';
import { EMBEDDED_APPEND, type EmbeddedAppend, type EmbeddedAppended } from './embedded-append.ts';
import type { AuditInput, AuditRecord } from './record.ts';
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
  entry: ChainEntry;
  resolve: (appended: AppendedEvent) => void;
  reject: (error: unknown) => void;
}

/** Where an event landed in the chain. */
export interface AppendedEvent {
  seq: number;
  hash: string;
}

/**
 * The append-only, hash-chained audit log.
 *
 * Administrative changes append inside their own transaction (`appendIn`): the change and its record
 * commit together or not at all. Decisions, which are many and not tied to a write, go through
 * `append`, which group-commits whatever has queued up and resolves each caller only once its batch is
 * durable. Both paths take the same chain lock, so the chain stays one line under concurrent writers
 * and across replicas (a PostgreSQL advisory lock; SQLite serialises transactions by itself). On the
 * embedded store a group commit is one procedure on the database thread (embedded-append.ts).
 */
export class AuditLog {
  readonly #store: Store;
  readonly #keys: KeyRing;
  readonly #checkpointEvery: number;
  readonly #clock: Clock;
  readonly #maxBatch: number;
  #checkpointKey: SigningKey | undefined;
  /** The checkpoint key the database thread already holds (embedded store). */
  #keyOnThread: string | undefined;
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
    const [row] = await this.#write(tx.db, [chainEntry(input)]);
    // Streams wake up when the change commits (a local event; other replicas' streams poll).
    tx.publish('audit.appended', { seq: row!.seq });
    return rowToRecord(row!);
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

  /**
   * Appends on its own, group-committed with other concurrent appends; resolves once durable. Details
   * that cannot be encoded (RFC 8785 has no NaN, BigInt, functions) reject this append alone.
   */
  append(input: AuditInput): Promise<AppendedEvent> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry: chainEntry(input), resolve, reject });
      // The commit starts a microtask later, not now: appends made in the same turn (a gateway call's
      // decision and the outcome records handed over just before it) then share one commit.
      this.#flushing ??= Promise.resolve().then(() => this.#drain());
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
          const appended = await this.#commit(batch.map((p) => p.entry));
          batch.forEach((pending, i) => pending.resolve(appended[i]!));
          for (const listener of this.#appendedListeners) listener();
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /** One group commit: a procedure on the embedded store's database thread, a transaction elsewhere. */
  async #commit(entries: ChainEntry[]): Promise<AppendedEvent[]> {
    const embedded = this.#store.embedded;
    if (!embedded) {
      const rows = await this.#store.transaction(({ db }) => this.#write(db, entries));
      return rows.map((r) => ({ seq: r.seq, hash: r.hash }));
    }
    const key = this.#checkpointKey;
    // The timestamp is taken once the batch holds the connection, as the transaction path reads it
    // inside its transaction: timestamps then never go backwards along the chain.
    const payload = (): EmbeddedAppend => {
      const p: EmbeddedAppend = { entries, ts: this.#clock.now().toISOString(), checkpointEvery: this.#checkpointEvery, keyId: key?.id };
      if (key && this.#keyOnThread !== key.id) p.privateKey = key.privateKey;
      return p;
    };
    const { first, hashes } = await embedded.runProcedure<EmbeddedAppended>(EMBEDDED_APPEND, payload);
    if (key) this.#keyOnThread = key.id;
    return hashes.map((hash, i) => ({ seq: first + i, hash }));
  }

  async #write(db: Transaction<Database>, entries: ChainEntry[]): Promise<AuditEventTable[]> {
    if (this.#store.dialect === 'postgres') await advisoryXactLock(db, LOCK_AUDIT_CHAIN);
    this.#tailQuery ??= this.#store.db.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).compile();
    const tail = (await db.executeQuery<ChainTail>(this.#tailQuery)).rows[0];
    const rows = chainRows(tail, entries, this.#clock.now().toISOString());
    // Insert in chunks: both dialects cap the number of bound parameters in one statement.
    for (let i = 0; i < rows.length; i += 500) {
      const chunk = rows.slice(i, i + 500);
      const parameters: unknown[] = [];
      for (const r of chunk) parameters.push(r.seq, r.ts, r.actor, r.action, r.target, r.outcome, r.details, r.prev_hash, r.hash);
      await db.executeQuery(CompiledQuery.raw(this.#insertSql(chunk.length), parameters));
    }
    // The key was loaded in init(): creating it here could need a second transaction while this one
    // holds the only SQLite connection.
    const checkpoints = checkpointRows(rows, this.#checkpointEvery, this.#checkpointKey);
    if (checkpoints.length > 0) await db.insertInto('audit_checkpoints').values(checkpoints).execute();
    return rows;
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
