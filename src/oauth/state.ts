import { storeUnavailable } from '../core/errors.ts';
import { isUniqueViolation, type Store } from '../store/index.ts';
import { storableId } from './adapter.ts';
import type { IdentityRecord, IdentityState } from './verifier.ts';

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
  /** Revocations may have been missed (a resync whose reload has not succeeded yet): check nothing. */
  #stale = false;

  constructor(store: Store) {
    this.#store = store;
  }

  async load(): Promise<void> {
    const rows = await this.#store.db.selectFrom('oauth_revocations').select(['jti', 'expires_at']).where('expires_at', '>', new Date().toISOString()).execute();
    this.#revoked = new Map(rows.map((r) => [r.jti, Date.parse(r.expires_at)]));
    this.#stale = false;
  }

  subscribe(): () => void {
    const offs = [
      this.#store.events.on(TOKEN_REVOKED, (event) => {
        const { jti, expiresAt } = event.data as { jti?: string; expiresAt?: string };
        if (typeof jti === 'string') this.#revoked.set(jti, Date.parse(expiresAt ?? '') || Date.now() + 86_400_000);
      }),
      // Stale until the reload succeeds: a token revoked on another replica while this one was not
      // listening must not pass meanwhile. A failed reload reaches the change-event bus, which logs it
      // and resyncs again later.
      this.#store.events.on('resync', () => {
        this.#stale = true;
        return this.load();
      }),
    ];
    return () => offs.forEach((off) => off());
  }

  isRevoked(jti: string): boolean {
    // Fails closed: the verifier answers 503 (the token could not be checked), never "not revoked".
    if (this.#stale) throw storeUnavailable();
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

/** The identity domain's query the cache reads through (OAuth does not read the registry's tables). */
export interface IdentityTokenStates {
  tokenState(id: string): Promise<{ status: 'active' | 'suspended' | 'decommissioned'; tokensNotBefore: number | null } | undefined>;
}

/**
 * Status and tokens-not-before of identities, and status of humans, cached for the token hot path and
 * dropped on `identity.changed` / `human.changed` (published by the registry in the same transaction as
 * the change), so a suspension stops live tokens on every replica at once, and a resume does not bring
 * back the tokens issued before it. A missed-events `resync` empties the cache: the next check reads the
 * store (and fails closed if it cannot).
 */
export class StatusCache {
  readonly #store: Store;
  readonly #registry: IdentityTokenStates;
  readonly #identities = new Map<string, IdentityRecord>();
  readonly #humans = new Map<string, boolean>();
  /**
   * Bumped by every invalidation. A read that started before an invalidation must not put what it read
   * into the cache afterwards: it may predate the change (a suspension), and would stay until the next
   * event. Such a read still answers its own caller (it was current when it started).
   */
  #epoch = 0;

  constructor(store: Store, registry: IdentityTokenStates) {
    this.#store = store;
    this.#registry = registry;
  }

  subscribe(onIdentityChange?: (id: string, status: string | undefined) => void): () => void {
    const offs = [
      this.#store.events.on(IDENTITY_CHANGED, (event) => {
        const { id, status } = event.data as { id?: string; status?: string };
        if (typeof id !== 'string') return;
        this.#epoch++;
        this.#identities.delete(id);
        onIdentityChange?.(id, status);
      }),
      this.#store.events.on(HUMAN_CHANGED, (event) => {
        const { id } = event.data as { id?: string };
        this.#epoch++;
        if (typeof id === 'string') this.#humans.delete(id);
        // An offboarded human's agents are suspended in the same change; their entries go too.
        this.#identities.clear();
      }),
      this.#store.events.on('resync', () => {
        this.#epoch++;
        this.#identities.clear();
        this.#humans.clear();
      }),
    ];
    return () => offs.forEach((off) => off());
  }

  async state(id: string): Promise<IdentityState> {
    return (await this.record(id)).status;
  }

  /** Status and tokens-not-before (epoch ms, or null) of an agent or workload. */
  async record(id: string): Promise<IdentityRecord> {
    const cached = this.#identities.get(id);
    if (cached) return cached;
    const epoch = this.#epoch;
    const found = await this.#registry.tokenState(id);
    const record: IdentityRecord = Object.freeze(found ? { status: found.status, tokensNotBefore: found.tokensNotBefore } : { status: 'missing', tokensNotBefore: null });
    if (epoch === this.#epoch) {
      if (this.#identities.size > 100_000) this.#identities.clear();
      this.#identities.set(id, record);
    }
    return record;
  }

  async active(humanId: string): Promise<boolean> {
    const cached = this.#humans.get(humanId);
    if (cached !== undefined) return cached;
    const epoch = this.#epoch;
    const row = await this.#store.db.selectFrom('humans').select('status').where('id', '=', humanId).executeTakeFirst();
    const active = row?.status === 'active';
    if (epoch === this.#epoch) {
      if (this.#humans.size > 100_000) this.#humans.clear();
      this.#humans.set(humanId, active);
    }
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
    // A key PostgreSQL cannot store (a jti with U+0000) cannot be claimed: taken as replayed (fail closed), not a 500.
    if (!storableId(key)) return false;
    try {
      await this.#store.db.insertInto('oauth_replay').values({ key: key.slice(0, 512), expires_at: expiresAt.toISOString() }).execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) {
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
