import { isUniqueViolation, type Store } from '../store/index.ts';

export const CLIENT_CHANGED = 'oauth.client.changed';

type Payload = Record<string, unknown>;

/**
 * Whether an id the client sent can be looked up at all. PostgreSQL text cannot hold U+0000: a client
 * id, code or refresh token with one made the query fail, and anyone could get a 500 server_error from
 * the authorization server. No stored id has one, so such an id names nothing.
 */
export const storableId = (id: string): boolean => !id.includes('\u0000');

/**
 * oidc-provider's storage adapter on Mandate's store (SQLite or the PostgreSQL every replica shares).
 * `Client` reads the `oauth_clients` registry (cached, dropped on CLIENT_CHANGED); every other model
 * (interactions, sessions, grants, codes, refresh tokens, replay markers) lives in `oauth_payloads`.
 * JWT access tokens are not stored at all: resource servers verify them by signature and check the
 * revocation list.
 */
export function createAdapterFactory(
  store: Store,
  hooks: {
    clientFilter?: (clientId: string, identityId: string | null) => Promise<boolean>;
    /**
     * Authorization codes and refresh tokens: `stamp` gives the issue instant (ms) recorded with a new
     * one; those `alive` refuses (given that instant, or null for one stored before stamps existed) do not
     * exist, as far as the token endpoint knows.
     */
    artifacts?: { stamp(payload: Payload): Promise<number>; alive(payload: Payload, issuedMs: number | null): Promise<boolean> };
  } = {},
) {
  const clientCache = new Map<string, Payload | null>();
  store.events.on(CLIENT_CHANGED, (event) => {
    const id = (event.data as { clientId?: string }).clientId;
    if (typeof id === 'string') clientCache.delete(id);
  });
  store.events.on('resync', () => clientCache.clear());

  const db = () => store.db;
  /** Models whose artifacts carry Mandate's issue stamp (the key is ours, kept out of what oidc-provider sees). */
  const STAMPED = new Set(['AuthorizationCode', 'RefreshToken']);
  const STAMP = 'urn:mandate:issued_ms';

  class ClientAdapter {
    async find(id: string): Promise<Payload | undefined> {
      if (id.length > 200 || !storableId(id)) return undefined;
      let metadata = clientCache.get(id);
      if (metadata === undefined) {
        const row = await db().selectFrom('oauth_clients').select(['metadata', 'identity_id', 'disabled_at']).where('client_id', '=', id).executeTakeFirst();
        metadata = row && !row.disabled_at ? ({ ...(JSON.parse(row.metadata) as Payload), 'urn:mandate:identity': row.identity_id } as Payload) : null;
        if (clientCache.size > 50_000) clientCache.clear();
        clientCache.set(id, metadata);
      }
      if (!metadata) return undefined;
      const identityId = (metadata['urn:mandate:identity'] as string | null) ?? null;
      if (hooks.clientFilter && !(await hooks.clientFilter(id, identityId))) return undefined;
      const { 'urn:mandate:identity': _drop, ...rest } = metadata;
      return rest;
    }

    async upsert(id: string, payload: Payload): Promise<void> {
      // Dynamic registration (RFC 7591) or a Client ID Metadata Document: a client without an identity.
      const now = new Date().toISOString();
      const metadata = JSON.stringify(payload);
      const existing = await db().selectFrom('oauth_clients').select('client_id').where('client_id', '=', id).executeTakeFirst();
      await store.transaction(async (tx) => {
        if (existing) await tx.db.updateTable('oauth_clients').set({ metadata }).where('client_id', '=', id).execute();
        else
          await tx.db
            .insertInto('oauth_clients')
            .values({ client_id: id, identity_id: null, auth_method: String(payload.token_endpoint_auth_method ?? 'none'), metadata, secret_hash: null, scopes: String(payload.scope ?? ''), created_by: 'registration', created_at: now, disabled_at: null })
            .execute();
        tx.publish(CLIENT_CHANGED, { clientId: id });
      });
    }

    async destroy(id: string): Promise<void> {
      await store.transaction(async (tx) => {
        await tx.db.updateTable('oauth_clients').set({ disabled_at: new Date().toISOString() }).where('client_id', '=', id).execute();
        tx.publish(CLIENT_CHANGED, { clientId: id });
      });
    }

    async consume(): Promise<void> {}
    async findByUid(): Promise<undefined> {
      return undefined;
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async revokeByGrantId(): Promise<void> {}
  }

  class PayloadAdapter {
    readonly #model: string;

    constructor(model: string) {
      this.#model = model;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      let stored = payload;
      if (hooks.artifacts && STAMPED.has(this.#model)) {
        // A re-save keeps the first stamp: saving an old artifact again must not make it look new.
        const existing = await db().selectFrom('oauth_payloads').select('payload').where('model', '=', this.#model).where('id', '=', id).executeTakeFirst();
        const previous = existing ? (JSON.parse(existing.payload) as Payload)[STAMP] : undefined;
        stored = { ...payload, [STAMP]: typeof previous === 'number' ? previous : await hooks.artifacts.stamp(payload) };
      }
      const row = {
        model: this.#model,
        id,
        payload: JSON.stringify(stored),
        grant_id: typeof payload.grantId === 'string' ? payload.grantId : null,
        user_code: typeof payload.userCode === 'string' ? payload.userCode : null,
        uid: typeof payload.uid === 'string' ? payload.uid : null,
        expires_at: expiresIn ? new Date(Date.now() + expiresIn * 1000).toISOString() : null,
        consumed_at: null,
      };
      await db()
        .insertInto('oauth_payloads')
        .values(row)
        .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet({ payload: row.payload, grant_id: row.grant_id, user_code: row.user_code, uid: row.uid, expires_at: row.expires_at }))
        .execute();
    }

    async #findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<Payload | undefined> {
      if (typeof value !== 'string' || value.length > 512 || !storableId(value)) return undefined;
      const row = await db().selectFrom('oauth_payloads').select(['payload', 'expires_at', 'consumed_at']).where('model', '=', this.#model).where(column, '=', value).executeTakeFirst();
      if (!row) return undefined;
      if (row.expires_at && row.expires_at < new Date().toISOString()) return undefined;
      const payload = JSON.parse(row.payload) as Payload;
      if (row.consumed_at) payload.consumed = Math.floor(Date.parse(row.consumed_at) / 1000);
      return payload;
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.#model === 'ReplayDetection') {
        // An id that cannot be stored cannot be claimed: taken as seen, so the proof is refused (fail closed).
        if (!storableId(id)) return { jti: id };
        // oidc-provider checks a jti with find-then-save; two replicas could both pass. Claiming the id
        // atomically here (insert; a conflict means "seen") makes the check exact across replicas.
        try {
          await db().insertInto('oauth_payloads').values({ model: this.#model, id, payload: '{}', grant_id: null, user_code: null, uid: null, expires_at: new Date(Date.now() + 600_000).toISOString(), consumed_at: null }).execute();
          return undefined;
        } catch (error) {
          if (isUniqueViolation(error)) return { jti: id };
          throw error;
        }
      }
      const payload = await this.#findWhere('id', id);
      if (payload && STAMPED.has(this.#model)) {
        const { [STAMP]: stamp, ...rest } = payload;
        if (hooks.artifacts && !(await hooks.artifacts.alive(rest, typeof stamp === 'number' ? stamp : null))) return undefined;
        return rest;
      }
      return payload;
    }
    findByUid(uid: string) {
      return this.#findWhere('uid', uid);
    }
    findByUserCode(userCode: string) {
      return this.#findWhere('user_code', userCode);
    }

    async consume(id: string): Promise<void> {
      await db().updateTable('oauth_payloads').set({ consumed_at: new Date().toISOString() }).where('model', '=', this.#model).where('id', '=', id).execute();
    }

    async destroy(id: string): Promise<void> {
      await db().deleteFrom('oauth_payloads').where('model', '=', this.#model).where('id', '=', id).execute();
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await db().deleteFrom('oauth_payloads').where('grant_id', '=', grantId).execute();
    }
  }

  return function Adapter(model: string) {
    return model === 'Client' ? new ClientAdapter() : new PayloadAdapter(model);
  };
}

/** Deletes expired artifacts (a periodic job). */
export async function pruneExpiredPayloads(store: Store): Promise<number> {
  const result = await store.db.deleteFrom('oauth_payloads').where('expires_at', '<', new Date().toISOString()).executeTakeFirst();
  return Number(result.numDeletedRows);
}
