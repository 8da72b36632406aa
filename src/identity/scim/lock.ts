/**
 * Serialises work per key within this process. SCIM PATCH and PUT read a resource, compute the new
 * state and write it; two concurrent PATCHes of one group (Entra sends member changes in batches) must
 * not lose each other's members. Across replicas the resource version (ETag, If-Match) is the guard.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
