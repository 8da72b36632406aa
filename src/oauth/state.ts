import type { Store } from '../store/index.ts';
import type { IdentityState } from './verifier.ts';

export const TOKEN_REVOKED = 'oauth.token.revoked';
const IDENTITY_CHANGED = 'identity.changed';
const HUMAN_CHANGED = 'human.changed';

/**
 * Revoked token ids, held in memory for the hot path and fed by the store's change events, so a
 * revocation on one replica takes effect on every replica at once. A missed-events `resync` reloads.
 */
export class RevocationList {
  readonly #store: Store;
  #revoked = new Map<string, number>();

  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<void> {
    const rows = await this.#store.db.selectFrom('oauth_revocations').select(['jti', 'expires_at']).where('expires_at', '>', new Date().toISOString()).execute();
    this.#revoked = new Map(rows.map((r) => [r.jti, Date.parse(r.expires_at)]));
  }

  subscribe(): () => void {
    const offs = [
      this.#store.events.on(TOKEN_REVOKED, (event) => {
        const { jti, expiresAt } = event.data as { jti?: string; expiresAt?: string };
        if (typeof jti === 'string') this.#revoked.set(jti, Date.parse(expiresAt ?? '') || Date.now() + 86_400_000);
      }),
      this.#store.events.on('resync', () => void this.load().catch(() => undefined)),
    ];
    return () => offs.forEach((off) => off());
  }

  isRevoked(jti: string): boolean {
    return this.#revoked.has(jti);
  }

  /** Records a revocation in the caller's transaction and announces it to every replica. */
  async revokeIn(tx: Parameters<Parameters<Store['transaction']>[0]>[0], entry: { jti: string; clientId: string | null; reason: string; expiresAt: Date }): Promise<void> {
    const exists = await tx.db.selectFrom('oauth_revocations').select('jti').where('jti', '=', entry.jti).executeTakeFirst();
    if (!exists) {
      await tx.db
        .insertInto('oauth_revocations')
        .values({ jti: entry.jti, client_id: entry.clientId, reason: entry.reason, revoked_at: new Date().toISOString(), expires_at: entry.expiresAt.toISOString() })
        .execute();
    }
    tx.publish(TOKEN_REVOKED, { jti: entry.jti, expiresAt: entry.expiresAt.toISOString() });
  }

  prune(now = Date.now()): void {
    for (const [jti, exp] of this.#revoked) if (exp < now) this.#revoked.delete(jti);
  }
}

/**
 * Status of identities and humans, cached for the token hot path and dropped on `identity.changed` /
 * `human.changed` (published by the registry in the same transaction as the change), so a suspension
 * stops live tokens on every replica at once.
 */
export class StatusCache {
  readonly #store: Store;
  readonly #identities = new Map<string, IdentityState>();
  readonly #humans = new Map<string, boolean>();

  constructor(store: Store) {
    this.#store = store;
  }

  subscribe(onIdentityChange?: (id: string, status: string | undefined) => void): () => void {
    const offs = [
      this.#store.events.on(IDENTITY_CHANGED, (event) => {
        const { id, status } = event.data as { id?: string; status?: string };
        if (typeof id !== 'string') return;
        this.#identities.delete(id);
        onIdentityChange?.(id, status);
      }),
      this.#store.events.on(HUMAN_CHANGED, (event) => {
        const { id } = event.data as { id?: string };
        if (typeof id === 'string') this.#humans.delete(id);
        // An offboarded human's agents are suspended in the same change; their entries go too.
        this.#identities.clear();
      }),
      this.#store.events.on('resync', () => {
        this.#identities.clear();
        this.#humans.clear();
      }),
    ];
    return () => offs.forEach((off) => off());
  }

  async state(id: string): Promise<IdentityState> {
    const cached = this.#identities.get(id);
    if (cached) return cached;
    const row = await this.#store.db.selectFrom('identities').select('status').where('id', '=', id).executeTakeFirst();
    const state: IdentityState = row ? row.status : 'missing';
    if (this.#identities.size > 100_000) this.#identities.clear();
    this.#identities.set(id, state);
    return state;
  }

  async active(humanId: string): Promise<boolean> {
    const cached = this.#humans.get(humanId);
    if (cached !== undefined) return cached;
    const row = await this.#store.db.selectFrom('humans').select('status').where('id', '=', humanId).executeTakeFirst();
    const active = row?.status === 'active';
    if (this.#humans.size > 100_000) this.#humans.clear();
    this.#humans.set(humanId, active);
    return active;
  }
}

/** One-time values shared by every replica: the first `claim` of a key wins, later ones see a replay. */
export class ReplayCache {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async claim(key: string, expiresAt: Date): Promise<boolean> {
    try {
      await this.#store.db.insertInto('oauth_replay').values({ key: key.slice(0, 512), expires_at: expiresAt.toISOString() }).execute();
      return true;
    } catch (error) {
      if (/UNIQUE constraint|duplicate key value/i.test((error as Error).message)) {
        // An expired entry may be reused (its proof can no longer pass the iat window anyway).
        const result = await this.#store.db.updateTable('oauth_replay').set({ expires_at: expiresAt.toISOString() }).where('key', '=', key.slice(0, 512)).where('expires_at', '<', new Date().toISOString()).executeTakeFirst();
        return Number(result.numUpdatedRows) > 0;
      }
      throw error;
    }
  }

  async prune(): Promise<number> {
    const result = await this.#store.db.deleteFrom('oauth_replay').where('expires_at', '<', new Date().toISOString()).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
