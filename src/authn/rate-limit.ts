/**
 * Fixed-window attempt counter per key (account, client address). In memory: each replica limits on its
 * own, so N replicas allow at most N× the attempts; argon2id keeps each guess expensive regardless.
 */
export class RateLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #hits = new Map<string, { count: number; resetAt: number }>();

  constructor(max: number, windowMs: number, now: () => number = Date.now) {
    this.#max = max;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Counts an attempt; false when the key is over its limit for the current window. */
  take(key: string): boolean {
    const now = this.#now();
    let entry = this.#hits.get(key);
    if (!entry || entry.resetAt <= now) {
      if (this.#hits.size > 100_000) this.#prune(now);
      entry = { count: 0, resetAt: now + this.#windowMs };
      this.#hits.set(key, entry);
    }
    entry.count += 1;
    return entry.count <= this.#max;
  }

  blocked(key: string): boolean {
    const entry = this.#hits.get(key);
    return !!entry && entry.resetAt > this.#now() && entry.count >= this.#max;
  }

  reset(key: string): void {
    this.#hits.delete(key);
  }

  #prune(now: number): void {
    for (const [key, entry] of this.#hits) if (entry.resetAt <= now) this.#hits.delete(key);
  }
}
