import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { open, seal } from '../core/crypto.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../store/index.ts';
import { advisoryXactLock, LOCKS } from '../store/index.ts';

export const SIGNING_KEY_PURPOSE = 'oauth-signing';
export const KEYS_CHANGED = 'oauth.keys.changed';
const LOCK_SIGNING_KEYS = LOCKS.signingKeys;

export interface PublishedKey {
  id: string;
  publicJwk: JsonWebKey;
  retiredAt: string | null;
}

/**
 * The authorization server's RS256 signing keys, in the key ring's `keys` table: private halves sealed with
 * the master key (bound to the key id), public halves in the clear. RS256 because RFC 9068 §4 makes it the
 * algorithm every resource server must support.
 *
 * Rotation retires the current key and makes a new one; a retired key stays in the JWKS until every
 * token it signed has expired (`retiredAt + maxTokenLifetime`), so rotation never breaks a live token.
 */
export class SigningKeys {
  readonly #store: Store;
  readonly #masterKey: Uint8Array;
  readonly #maxTokenSeconds: number;
  #public = new Map<string, { key: KeyObject; retiredAt: string | null }>();
  #lastReload = 0;

  constructor(store: Store, masterKey: Uint8Array, options: { maxTokenSeconds: number }) {
    this.#store = store;
    this.#masterKey = masterKey;
    this.#maxTokenSeconds = options.maxTokenSeconds;
  }

  /** The newest unretired key with its private half, created on first use (once across replicas). */
  async current(): Promise<{ id: string; privateJwk: JsonWebKey; publicJwk: JsonWebKey; createdAt: string }> {
    let row = await this.#newest();
    if (!row) {
      await this.#store.transaction(async ({ db }) => {
        if (this.#store.dialect === 'postgres') await advisoryXactLock(db, LOCK_SIGNING_KEYS);
        const raced = await db.selectFrom('keys').select('id').where('purpose', '=', SIGNING_KEY_PURPOSE).where('retired_at', 'is', null).executeTakeFirst();
        if (!raced) await this.#insert(db);
      });
      row = await this.#newest();
    }
    const pem = open(this.#masterKey, row!.sealed_private, `key:${row!.id}`).toString('utf8');
    const privateJwk = { ...createPrivateKey(pem).export({ format: 'jwk' }), kid: row!.id, alg: 'RS256', use: 'sig' };
    return { id: row!.id, privateJwk, publicJwk: JSON.parse(row!.public_jwk) as JsonWebKey, createdAt: row!.created_at };
  }

  /** Retires the current key and creates the next; other replicas learn of it through KEYS_CHANGED. */
  async rotate(expectedCurrent?: string): Promise<string> {
    return this.#store.transaction(async (tx) => {
      if (this.#store.dialect === 'postgres') await advisoryXactLock(tx.db, LOCK_SIGNING_KEYS);
      if (expectedCurrent) {
        // A scheduled rotation: if another replica already rotated, keep its key.
        const live = await tx.db.selectFrom('keys').select('id').where('purpose', '=', SIGNING_KEY_PURPOSE).where('retired_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
        if (live && live.id !== expectedCurrent) return live.id;
      }
      await tx.db.updateTable('keys').set({ retired_at: new Date().toISOString() }).where('purpose', '=', SIGNING_KEY_PURPOSE).where('retired_at', 'is', null).execute();
      const id = await this.#insert(tx.db);
      tx.publish(KEYS_CHANGED, { id });
      return id;
    });
  }

  /** Public keys to publish: the current one and retired ones whose tokens may still be alive. */
  async published(): Promise<PublishedKey[]> {
    const cutoff = new Date(Date.now() - (this.#maxTokenSeconds + 60) * 1000).toISOString();
    const rows = await this.#store.db
      .selectFrom('keys')
      .select(['id', 'public_jwk', 'retired_at'])
      .where('purpose', '=', SIGNING_KEY_PURPOSE)
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', cutoff)]))
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map((r) => ({ id: r.id, publicJwk: JSON.parse(r.public_jwk) as JsonWebKey, retiredAt: r.retired_at }));
  }

  /** The verification key for `kid`, if it is one Mandate still publishes. Unknown ids reload (at most once a second). */
  async resolve(kid: string): Promise<KeyObject | undefined> {
    let hit = this.#public.get(kid);
    if (!hit && Date.now() - this.#lastReload > 1000) {
      await this.reload();
      hit = this.#public.get(kid);
    }
    if (!hit) return undefined;
    if (hit.retiredAt && Date.parse(hit.retiredAt) + (this.#maxTokenSeconds + 60) * 1000 < Date.now()) return undefined;
    return hit.key;
  }

  async reload(): Promise<void> {
    this.#lastReload = Date.now();
    const keys = await this.published();
    this.#public = new Map(keys.map((k) => [k.id, { key: createPublicKey({ key: k.publicJwk, format: 'jwk' }), retiredAt: k.retiredAt }]));
  }

  async #newest() {
    return this.#store.db
      .selectFrom('keys')
      .selectAll()
      .where('purpose', '=', SIGNING_KEY_PURPOSE)
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
  }

  async #insert(db: Store['db']): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const id = newId('key');
    const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: id, alg: 'RS256', use: 'sig' };
    await db
      .insertInto('keys')
      .values({
        id,
        purpose: SIGNING_KEY_PURPOSE,
        public_jwk: JSON.stringify(publicJwk),
        sealed_private: seal(this.#masterKey, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, `key:${id}`),
        created_at: new Date().toISOString(),
        retired_at: null,
      })
      .execute();
    return id;
  }
}
