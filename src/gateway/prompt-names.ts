import type { Logger } from 'pino';
import { Rediscovery } from './rediscovery.ts';

/**
 * The prompt names each upstream lists, so that `prompts/get` (and a completion for a prompt) is only
 * forwarded for a prompt the upstream offers under exactly that name. The registry stores tools, not
 * prompts (prompts carry no labels of their own: they are decided with the server's), so the names are
 * listed on first use and kept in memory, per replica; an unknown name lists them again, rate-limited
 * and coalesced like tool rediscovery.
 */
export class PromptNames {
  readonly #names = new Map<string, ReadonlySet<string>>();
  readonly #rediscovery: Rediscovery;

  constructor(list: (server: string) => Promise<string[]>, logger: Logger, options: { intervalMs?: number } = {}) {
    this.#rediscovery = new Rediscovery(
      async (server) => {
        this.#names.set(server, new Set(await list(server)));
      },
      logger,
      options,
    );
  }

  /** Whether the upstream offers a prompt of exactly this name, after listing its prompts once more when not known. */
  async known(server: string, name: string): Promise<boolean> {
    if (this.#names.get(server)?.has(name) === true) return true;
    await this.#rediscovery.refresh(server);
    return this.#names.get(server)?.has(name) === true;
  }

  /** The server changed or went: what was listed may no longer hold. */
  forget(server: string): void {
    this.#names.delete(server);
    this.#rediscovery.forget(server);
  }
}
