import { EventEmitter } from 'node:events';
import type { StoreLogger } from './pg-pool.ts';

/**
 * Change events tell every replica that something it may hold in memory changed (an agent suspended, a
 * policy activated, a token revoked). Payloads stay small (ids, not rows): receivers re-read the store.
 *
 * The topic `resync` means "events may have been missed" (a lost LISTEN connection): drop caches.
 */
export interface ChangeEvent {
  topic: string;
  data: Record<string, unknown>;
}

/**
 * Topic → payload, for the topics whose payload is typed. Domains add their topics by declaration
 * merging (`declare module '../store/events.ts' { interface ChangeTopics { 'x.changed': { id: string } } }`),
 * so the store never imports a domain. Untyped topics still work through the `string` overloads.
 */
export interface ChangeTopics {
  /** Events may have been missed: reload everything. */
  resync: Record<string, never>;
}

export type ChangeTopic = keyof ChangeTopics & string;

/** An event of a typed topic. */
export interface TopicEvent<K extends ChangeTopic> {
  topic: K;
  data: ChangeTopics[K];
}

/**
 * A handler that does asynchronous work returns its promise, never starts it and drops it: the process
 * that made the change waits for it (read-your-writes), and a failure reaches the bus, which logs it and
 * schedules a `resync` so the subscriber's cache is reloaded rather than left stale.
 */
export type ChangeHandler = (event: ChangeEvent) => void | Promise<void>;

// After a failing subscriber, `resync` is delivered again after these delays (doubling, capped at 2 s so
// caches are current within seconds of the database's return), until
// one delivery succeeds everywhere: a cache that could not reload during an outage reloads after it.
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 2_000;

export class ChangeEvents {
  readonly #emitter = new EventEmitter();
  readonly #logger: StoreLogger | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_FIRST_MS;
  #closed = false;

  constructor(logger?: StoreLogger) {
    this.#emitter.setMaxListeners(0);
    this.#logger = logger;
  }

  /** Subscribes to one topic, or to every topic with `*`. Returns the unsubscribe function. */
  on<K extends ChangeTopic>(topic: K, handler: (event: TopicEvent<K>) => void | Promise<void>): () => void;
  on(topic: string, handler: ChangeHandler): () => void;
  on(topic: string, handler: ChangeHandler): () => void {
    this.#emitter.on(topic, handler);
    return () => this.#emitter.off(topic, handler);
  }

  /** Delivers without waiting; failures are handled as in `deliverAndWait` (which never rejects). */
  deliver(event: ChangeEvent): void {
    void this.deliverAndWait(event);
  }

  /**
   * Delivers to every subscriber and resolves once the promises they returned have settled, so that
   * when a change's transaction returns, this process's caches (decisions, token status) already
   * reflect it. A failing subscriber never stops the others, and is not left stale: it is logged and a
   * `resync` follows (see RETRY_FIRST_MS). Never rejects.
   */
  async deliverAndWait(event: ChangeEvent): Promise<void> {
    const waits: Promise<boolean>[] = [];
    const failed = (error: unknown) => {
      this.#logger?.warn({ err: error, topic: event.topic }, 'store: a change-event subscriber failed; its cache is reloaded by a resync');
      return false;
    };
    for (const topic of [event.topic, '*']) {
      for (const listener of this.#emitter.listeners(topic) as ChangeHandler[]) {
        try {
          const result = listener(event);
          if (result instanceof Promise) waits.push(result.then(() => true, failed));
        } catch (error) {
          waits.push(Promise.resolve(failed(error)));
        }
      }
    }
    const ok = (await Promise.all(waits)).every(Boolean);
    if (ok) {
      if (event.topic === 'resync') this.#retryDelay = RETRY_FIRST_MS;
    } else this.#scheduleResync();
  }

  /** True once the store is closing: nothing should reload any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stops pending retries (the store is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  /** One pending `resync` at a time, however many subscribers failed; each failed retry waits longer. */
  #scheduleResync(): void {
    if (this.#retry || this.#closed) return;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(delay * 2, RETRY_MAX_MS);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.deliver({ topic: 'resync', data: {} });
    }, delay);
    // A pending retry must not keep a finished process (a CLI command) alive.
    this.#retry.unref();
  }
}
