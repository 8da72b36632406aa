import { IDENTITY_CHANGED } from '../identity/index.ts';
import type { Store } from '../store/index.ts';

export interface AgentState {
  id: string;
  kind: 'agent' | 'workload';
  ownerId: string;
  status: 'active' | 'suspended' | 'decommissioned';
}

/**
 * The status and owner of agents the gateway serves, cached for the hot path and dropped on
 * `identity.changed` (from any replica). A change away from `active` is the kill switch: listeners close
 * the agent's sessions and cancel its calls.
 */
export class AgentDirectory {
  readonly #store: Store;
  readonly #cache = new Map<string, Promise<AgentState | undefined>>();
  readonly #stopped = new Set<(id: string) => void>();

  constructor(store: Store) {
    this.#store = store;
    store.events.on(IDENTITY_CHANGED, (event) => {
      const id = String(event.data.id);
      this.#cache.delete(id);
      const status = event.data.status;
      if (status !== undefined && status !== 'active') for (const listener of this.#stopped) listener(id);
    });
    store.events.on('resync', async () => {
      // Events may have been missed: re-check every agent we hold sessions for. Awaited: a failed
      // read reaches the change-event bus (logged, another resync later), and the agent stays
      // uncached so the next request reads it again.
      const ids = [...this.#cache.keys()];
      this.#cache.clear();
      await Promise.all(
        ids.map(async (id) => {
          const state = await this.get(id);
          if (state?.status !== 'active') for (const listener of this.#stopped) listener(id);
        }),
      );
    });
  }

  /** Called with an identity id when it stops being active (suspended, decommissioned). */
  onStopped(listener: (id: string) => void): void {
    this.#stopped.add(listener);
  }

  get(id: string): Promise<AgentState | undefined> {
    let entry = this.#cache.get(id);
    if (!entry) {
      entry = this.#store.db
        .selectFrom('identities')
        .select(['id', 'kind', 'owner_id', 'status'])
        .where('id', '=', id)
        .executeTakeFirst()
        .then((row) => (row ? { id: row.id, kind: row.kind, ownerId: row.owner_id, status: row.status } : undefined));
      // A failed read is not cached: the next call asks the store again (and is denied meanwhile).
      entry.catch(() => this.#cache.delete(id));
      this.#cache.set(id, entry);
    }
    return entry;
  }
}
