import { generateKeyPairSync, createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { newId } from '../core/ids.ts';
import { open, seal } from '../core/crypto.ts';
import type { Store } from '../store/index.ts';
import { advisoryXactLock } from '../store/index.ts';

const LOCK_KEYS = 7_261_003;

export interface SigningKey {
  id: string;
  publicJwk: JsonWebKey;
  privateKey: KeyObject;
}

/**
 * Asymmetric keys by purpose (audit checkpoints, token signing, the CA). The private half is sealed with
 * the master key before it reaches the store; the public half is stored in the clear so anyone holding
 * the database (or an export) can verify without the master key.
 */
export class KeyRing {
  readonly #store: Store;
  readonly #masterKey: Uint8Array;

  constructor(store: Store, masterKey: Uint8Array) {
    this.#store = store;
    this.#masterKey = masterKey;
  }

  /** The current Ed25519 key for `purpose`, created on first use (once, even with several replicas). */
  async currentEd25519(purpose: string): Promise<SigningKey> {
    const existing = await this.#newest(purpose);
    if (existing) return existing;
    return this.#store.transaction(async ({ db }) => {
      if (this.#store.dialect === 'postgres') await advisoryXactLock(db, LOCK_KEYS);
      const raced = await this.#newest(purpose, db);
      if (raced) return raced;
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const id = newId('key');
      const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: id, alg: 'EdDSA', use: 'sig' };
      const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      await db
        .insertInto('keys')
        .values({
          id,
          purpose,
          public_jwk: JSON.stringify(publicJwk),
          sealed_private: seal(this.#masterKey, pem, `key:${id}`),
          created_at: new Date().toISOString(),
          retired_at: null,
        })
        .execute();
      return { id, publicJwk, privateKey };
    });
  }

  async #newest(purpose: string, db = this.#store.db): Promise<SigningKey | undefined> {
    const row = await db
      .selectFrom('keys')
      .selectAll()
      .where('purpose', '=', purpose)
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    if (!row) return undefined;
    const pem = open(this.#masterKey, row.sealed_private, `key:${row.id}`).toString('utf8');
    return { id: row.id, publicJwk: JSON.parse(row.public_jwk) as JsonWebKey, privateKey: createPrivateKey(pem) };
  }
}

/** Public keys by id for `purpose`, retired ones included: old signatures must stay verifiable. */
export async function publicKeys(store: Store, purpose: string): Promise<Map<string, JsonWebKey>> {
  const rows = await store.db.selectFrom('keys').select(['id', 'public_jwk']).where('purpose', '=', purpose).execute();
  return new Map(rows.map((row) => [row.id, JSON.parse(row.public_jwk) as JsonWebKey]));
}
