import type { Logger } from 'pino';

/** How long after one rediscovery of a server the next may start (agents can send unknown names at will). */
export const REDISCOVERY_INTERVAL_MS = 30_000;

/**
 * Lists an upstream's tools again when an agent names one the registry does not know: the upstream may
 * have added it since the last discovery. An agent must not be able to make the gateway hammer the
 * upstream with unknown names, so per server at most one rediscovery starts every `intervalMs`, and
 * calls arriving while one runs wait for that one instead of starting their own. Per replica.
 */
export class Rediscovery {
  readonly #run: (server: string) => Promise<unknown>;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #running = new Map<string, Promise<void>>();
  readonly #startedAt = new Map<string, number>();

  constructor(run: (server: string) => Promise<unknown>, logger: Logger, options: { intervalMs?: number; now?: () => number } = {}) {
    this.#run = run;
    this.#logger = logger;
    this.#intervalMs = options.intervalMs ?? REDISCOVERY_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Resolves once a rediscovery of `server` that this call started or joined has ended (the registry is
   * then current), or at once when the last one started less than the interval ago. Never rejects: a
   * failed discovery is recorded on the server by the registry and logged here, and the caller simply
   * finds the name still unknown.
   */
  refresh(server: string): Promise<void> {
    const running = this.#running.get(server);
    if (running) return running;
    const now = this.#now();
    const last = this.#startedAt.get(server);
    if (last !== undefined && now - last < this.#intervalMs) return Promise.resolve();
    this.#startedAt.set(server, now);
    const run = this.#run(server)
      .then(
        () => undefined,
        (error: unknown) => this.#logger.warn({ server, err: (error as Error).message }, 'gateway rediscovery failed'),
      )
      .finally(() => this.#running.delete(server));
    this.#running.set(server, run);
    return run;
  }

  /** The server changed (an admin edited, re-registered or removed it): its next refresh may start at once. */
  forget(server: string): void {
    this.#startedAt.delete(server);
  }
}
