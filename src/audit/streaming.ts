import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import { randomToken, open, seal } from '../core/crypto.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { releaseLease, tryLease, type Store } from '../store/index.ts';
import type { AuditLog } from './audit-log.ts';
import { toOcsf } from './ocsf.ts';
import { rowToRecord } from './audit-log.ts';

export interface AuditSink {
  id: string;
  name: string;
  url: string;
  format: 'jsonl' | 'ocsf';
  batchSize: number;
  cursor: number;
  lastError: string | null;
  lastDeliveryAt: string | null;
  createdAt: string;
}

export interface StreamOptions {
  masterKey: Uint8Array;
  /** Allow http:// receivers (dev and tests); production requires https. */
  allowHttp: boolean;
  /** Longest wait between retries of a failing receiver. */
  maxBackoffMs?: number;
  /** How often an idle stream checks for events appended by other replicas. */
  pollMs?: number;
  requestTimeoutMs?: number;
}

const SINKS_CHANGED = 'audit.sinks.changed';

/**
 * Streams the audit chain to webhooks (SIEM collectors). Each sink has a delivery cursor in the store:
 * it advances only when the receiver acknowledged a batch with 2xx, so a receiver that is down for a
 * while loses nothing and receives everything in order once it is back. One replica delivers a sink at
 * a time (a lease); a batch is at most `batchSize` events, so a slow receiver slows its own stream,
 * never the appends.
 *
 * Each POST body is NDJSON (one event per line) signed with the sink's secret:
 * `Mandate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 */
export class AuditStreamer {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #logger: Logger;
  readonly #options: Required<StreamOptions>;
  readonly #loops = new Map<string, AbortController>();
  readonly #wakers = new Set<() => void>();
  #offs: (() => void)[] = [];
  #started = false;

  constructor(store: Store, audit: AuditLog, logger: Logger, options: StreamOptions) {
    this.#store = store;
    this.#audit = audit;
    this.#logger = logger;
    this.#options = { maxBackoffMs: 30_000, pollMs: 1_000, requestTimeoutMs: 10_000, ...options };
  }

  async create(input: { name: string; url: string; format?: 'jsonl' | 'ocsf' | undefined; batchSize?: number | undefined }, actor: string): Promise<AuditSink & { secret: string }> {
    const url = new URL(input.url);
    if (url.protocol !== 'https:' && !(this.#options.allowHttp && url.protocol === 'http:')) {
      throw new MandateError('AUDIT_SINK_URL_INSECURE', 'audit sinks must use https:// (http:// only in dev mode)');
    }
    // The URL is listed by the API and recorded in the chain: credentials do not belong in it (the body is HMAC-signed).
    if (url.username || url.password) throw new MandateError('AUDIT_SINK_URL_INSECURE', 'audit sink URLs must not carry credentials; verify the mandate-signature header instead');
    const secret = `whsec_${randomToken(32)}`;
    const id = newId('snk');
    const lastSeq = await this.#lastSeq();
    const sink = await this.#store.transaction(async (tx) => {
      const clash = await tx.db.selectFrom('audit_sinks').select('id').where('name', '=', input.name).executeTakeFirst();
      if (clash) throw new MandateError('AUDIT_SINK_EXISTS', `audit sink ${input.name} exists`, 409);
      const row = {
        id,
        name: input.name,
        url: url.toString(),
        format: input.format ?? 'jsonl',
        sealed_secret: seal(this.#options.masterKey, secret, `audit-sink:${id}`),
        batch_size: input.batchSize ?? 500,
        // A new sink starts from the beginning of the chain: a SIEM wants the whole history.
        cursor: 0,
        last_error: null,
        last_delivery_at: null,
        created_at: new Date().toISOString(),
      };
      await tx.db.insertInto('audit_sinks').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'audit.sink.create', target: id, outcome: 'success', details: { name: input.name, url: row.url, format: row.format, chainLength: lastSeq } });
      tx.publish(SINKS_CHANGED, { id });
      return toSink(row);
    });
    return { ...sink, secret };
  }

  async list(): Promise<(AuditSink & { lag: number })[]> {
    const [rows, last] = await Promise.all([this.#store.db.selectFrom('audit_sinks').selectAll().orderBy('name').execute(), this.#lastSeq()]);
    return rows.map((row) => ({ ...toSink(row), lag: last - Number(row.cursor) }));
  }

  async remove(id: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const result = await tx.db.deleteFrom('audit_sinks').where('id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw notFound('audit_sink', id);
      await this.#audit.appendIn(tx, { actor, action: 'audit.sink.delete', target: id, outcome: 'success' });
      tx.publish(SINKS_CHANGED, { id });
    });
  }

  /** Starts a delivery loop per sink, and follows sinks created or removed on any replica. */
  async start(): Promise<void> {
    this.#started = true;
    this.#offs.push(this.#audit.onAppended(() => this.#wakeAll()));
    // Returned, not dropped: a failed sync (database away) reaches the change-event bus, which logs it
    // and resyncs later; dropped, its rejection was unowned and ended the process.
    this.#offs.push(this.#store.events.on(SINKS_CHANGED, () => this.#sync()));
    this.#offs.push(this.#store.events.on('resync', () => this.#sync()));
    await this.#sync();
  }

  async stop(): Promise<void> {
    this.#started = false;
    for (const off of this.#offs) off();
    this.#offs = [];
    for (const [id, controller] of this.#loops) {
      controller.abort();
      await releaseLease(this.#store, `audit-sink:${id}`, this.#store.origin).catch((error: unknown) => this.#logger.warn({ err: error, sink: id }, 'releasing an audit sink lease failed; it expires on its own'));
    }
    this.#loops.clear();
    this.#wakeAll();
  }

  async #sync(): Promise<void> {
    if (!this.#started) return;
    const ids = new Set((await this.#store.db.selectFrom('audit_sinks').select('id').execute()).map((r) => r.id));
    for (const [id, controller] of this.#loops) {
      if (!ids.has(id)) {
        controller.abort();
        this.#loops.delete(id);
      }
    }
    for (const id of ids) {
      if (this.#loops.has(id)) continue;
      const controller = new AbortController();
      this.#loops.set(id, controller);
      void this.#deliverLoop(id, controller.signal);
    }
  }

  #wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /** Waits until woken (new events), the poll interval passes, or the loop is stopped. */
  #idle(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async #deliverLoop(id: string, signal: AbortSignal): Promise<void> {
    let backoff = 0;
    while (!signal.aborted) {
      try {
        if (!(await tryLease(this.#store, `audit-sink:${id}`, this.#store.origin, 30_000))) {
          await this.#idle(this.#options.pollMs * 5, signal);
          continue;
        }
        const sink = await this.#store.db.selectFrom('audit_sinks').selectAll().where('id', '=', id).executeTakeFirst();
        if (!sink) return;
        const events = await this.#store.db.selectFrom('audit_events').selectAll().where('seq', '>', Number(sink.cursor)).orderBy('seq').limit(sink.batch_size).execute();
        if (events.length === 0) {
          await this.#idle(this.#options.pollMs, signal);
          continue;
        }
        const records = events.map(rowToRecord);
        const body = `${records.map((r) => JSON.stringify(sink.format === 'ocsf' ? toOcsf(r) : r)).join('\n')}\n`;
        const secret = open(this.#options.masterKey, sink.sealed_secret, `audit-sink:${id}`).toString('utf8');
        const timestamp = Math.floor(Date.now() / 1000);
        const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
        const first = records[0]!.seq;
        const last = records[records.length - 1]!.seq;
        let failure: string | undefined;
        try {
          const response = await fetch(sink.url, {
            method: 'POST',
            headers: { 'content-type': 'application/x-ndjson', 'mandate-signature': `t=${timestamp},v1=${signature}`, 'mandate-sink': sink.name, 'mandate-first-seq': String(first), 'mandate-last-seq': String(last) },
            body,
            signal: AbortSignal.any([signal, AbortSignal.timeout(this.#options.requestTimeoutMs)]),
            redirect: 'error',
          });
          await response.arrayBuffer().catch(() => undefined);
          if (!response.ok) failure = `receiver answered ${response.status}`;
        } catch (error) {
          failure = `delivery failed: ${(error as Error).message}`;
        }
        if (failure === undefined) {
          // Advance only from the cursor we read: if another replica advanced it meanwhile, do not move it back.
          await this.#store.db.updateTable('audit_sinks').set({ cursor: last, last_error: null, last_delivery_at: new Date().toISOString() }).where('id', '=', id).where('cursor', '=', sink.cursor).execute();
          backoff = 0;
        } else {
          await this.#store.db.updateTable('audit_sinks').set({ last_error: failure }).where('id', '=', id).execute();
          backoff = Math.min(this.#options.maxBackoffMs, backoff === 0 ? 100 : backoff * 2);
          await this.#idle(backoff, signal);
        }
      } catch (error) {
        if (signal.aborted) return;
        this.#logger.warn({ err: error, sink: id }, 'audit stream error');
        await this.#idle(this.#options.pollMs, signal);
      }
    }
  }

  async #lastSeq(): Promise<number> {
    const row = await this.#store.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('max')).executeTakeFirst();
    return Number(row?.max ?? 0);
  }
}

function toSink(row: { id: string; name: string; url: string; format: 'jsonl' | 'ocsf'; batch_size: number; cursor: number; last_error: string | null; last_delivery_at: string | null; created_at: string }): AuditSink {
  return { id: row.id, name: row.name, url: row.url, format: row.format, batchSize: row.batch_size, cursor: Number(row.cursor), lastError: row.last_error, lastDeliveryAt: row.last_delivery_at, createdAt: row.created_at };
}
