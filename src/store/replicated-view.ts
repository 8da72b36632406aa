import { storeUnavailable } from '../core/errors.ts';
import type { ChangeEvents, ChangeTopic, TopicEvent } from './events.ts';
import type { StoreLogger } from './pg-pool.ts';

/**
 * An in-memory replica of something the store holds (settings, limits, a registry), kept current by
 * change events. It owns what every hand-written cache used to get subtly different:
 * - loads are serialized and coalesced: a load that started before an event never overwrites one that
 *   started after it (each event queues at most one load behind the running one);
 * - a failed load (or incremental apply) marks the view stale; the view retries with backoff, reloads on
 *   every `resync`, and rethrows to the change-event bus (which logs it and resends `resync`);
 * - `current()` refuses to answer from a stale or never-loaded view (`STORE_UNAVAILABLE`): a view that
 *   guards a decision fails closed. `last()` is for views that deliberately serve the last good value.
 */
export interface ReplicatedViewOptions<T, K extends ChangeTopic> {
  /** For log lines. */
  name: string;
  events: ChangeEvents;
  /** Topics after which the view changes; `resync` is always implied. */
  topics: readonly K[];
  /** Reads the whole value from the store. */
  load: () => Promise<T>;
  /**
   * Applies one event to the current value without a full load; returns the next value, or `undefined`
   * to ask for a full load instead. Without it, every event reloads.
   */
  apply?: (current: T, event: TopicEvent<K>) => T | undefined | Promise<T | undefined>;
  /**
   * Called after a new value is in place (so the view reads it): with the event it applied, or without
   * one after a full load. It must not throw (listeners are the owner's to guard).
   */
  onUpdate?: (value: T, event: TopicEvent<K> | undefined) => void;
  /** Value served by `last()` before the first load. */
  initial?: T;
  logger?: StoreLogger;
}

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 2_000;

export class ReplicatedView<T, K extends ChangeTopic = ChangeTopic> {
  readonly #options: ReplicatedViewOptions<T, K>;
  readonly #unsubscribe: (() => void)[] = [];
  #value: T | undefined;
  #loaded = false;
  #stale = false;
  #disposed = false;
  /** The load queued behind the running work, which every event arriving meanwhile joins. */
  #queued: Promise<void> | undefined;
  /** Incremental applies run in the same queue as loads, so they never interleave with one. */
  #tail: Promise<unknown> = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_FIRST_MS;

  constructor(options: ReplicatedViewOptions<T, K>) {
    this.#options = options;
    this.#value = options.initial;
    for (const topic of options.topics) this.#unsubscribe.push(options.events.on(topic, (event) => this.#onEvent(event as TopicEvent<K>)));
    this.#unsubscribe.push(options.events.on('resync', () => this.reload()));
  }

  /** The value; throws `STORE_UNAVAILABLE` while the view is stale or has never loaded. */
  current(): T {
    if (this.#stale || !this.#loaded) throw storeUnavailable();
    return this.#value as T;
  }

  /** The last successfully loaded value (or `initial`), stale or not. */
  last(): T | undefined {
    return this.#value;
  }

  get stale(): boolean {
    return this.#stale;
  }

  /**
   * Loads the whole value, after the load already running if any (coalesced with other callers waiting
   * for the same next load). Rejects when that load fails; the view is then stale and retries by itself.
   */
  reload(): Promise<void> {
    if (this.#disposed) return Promise.resolve();
    if (this.#queued) return this.#queued;
    const queued = this.#tail.then(() => {
      // From here on it runs: events arriving now need a load that starts after this one.
      this.#queued = undefined;
      return this.#loadOnce();
    });
    this.#queued = queued;
    this.#tail = queued.catch(() => undefined);
    return queued;
  }

  /**
   * Applies an event this process knows about now (its own write), in order with the others; resolves
   * once the view reflects it. Rejects like `reload`.
   */
  refresh(event: TopicEvent<K>): Promise<void> {
    return this.#onEvent(event);
  }

  /** Unsubscribes and stops retrying; the last value stays readable. */
  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  #onEvent(event: TopicEvent<K>): Promise<void> {
    const apply = this.#options.apply;
    // A stale value cannot be patched: only a full load brings it back.
    if (!apply || this.#stale || !this.#loaded) return this.reload();
    const step = this.#tail.then(async () => {
      if (this.#disposed) return;
      // A load may have failed while this waited.
      if (this.#stale || !this.#loaded) return this.#loadOnce();
      let next: T | undefined;
      try {
        next = await apply(this.#value as T, event);
      } catch (error) {
        this.#fail(error);
        throw error;
      }
      if (next === undefined) return this.#loadOnce();
      this.#value = next;
      this.#options.onUpdate?.(next, event);
    });
    this.#tail = step.catch(() => undefined);
    return step;
  }

  async #loadOnce(): Promise<void> {
    if (this.#disposed) return;
    let value: T;
    try {
      value = await this.#options.load();
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    if (this.#disposed) return;
    this.#value = value;
    this.#loaded = true;
    this.#stale = false;
    this.#retryDelay = RETRY_FIRST_MS;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#options.onUpdate?.(value, undefined);
  }

  /** Marks the view stale, logs, and schedules one retry (doubling, capped), on top of the bus's resync. */
  #fail(error: unknown): void {
    this.#stale = true;
    this.#options.logger?.warn({ err: error, view: this.#options.name }, 'store: a replicated view failed to load; it answers STORE_UNAVAILABLE until a reload succeeds');
    // A closed store's views stop retrying: their owner is shutting down.
    if (this.#retry || this.#disposed || this.#options.events.closed) return;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(delay * 2, RETRY_MAX_MS);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      // Its failure is already logged and reschedules the next retry in #fail.
      this.reload().catch(() => undefined);
    }, delay);
    // A pending retry must not keep a finished process (a CLI command) alive.
    this.#retry.unref();
  }
}
