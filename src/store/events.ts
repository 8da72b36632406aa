import { EventEmitter } from 'node:events';

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

/** A handler may return a promise: the process that made the change waits for it (read-your-writes). */
export type ChangeHandler = (event: ChangeEvent) => void | Promise<void>;

export class ChangeEvents {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  /** Subscribes to one topic, or to every topic with `*`. Returns the unsubscribe function. */
  on(topic: string, handler: ChangeHandler): () => void {
    this.#emitter.on(topic, handler);
    return () => this.#emitter.off(topic, handler);
  }

  deliver(event: ChangeEvent): void {
    void this.deliverAndWait(event);
  }

  /**
   * Delivers to every subscriber and resolves once the promises they returned have settled, so that
   * when a change's transaction returns, this process's caches (decisions, token status) already
   * reflect it. A failing subscriber never stops the others.
   */
  async deliverAndWait(event: ChangeEvent): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const topic of [event.topic, '*']) {
      for (const listener of this.#emitter.listeners(topic) as ChangeHandler[]) {
        try {
          const result = listener(event);
          if (result instanceof Promise) waits.push(result.catch(() => undefined));
        } catch {
          // The subscriber's own problem; the change itself is committed.
        }
      }
    }
    await Promise.all(waits);
  }
}
