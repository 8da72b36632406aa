import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { open, seal } from '../core/crypto.ts';
import { MandateError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store, Tx } from '../store/index.ts';

/** Change-event topic: a secret changed or data keys rotated (replicas drop cached plaintext). */
export const VAULT_CHANGED = 'vault.changed';

const NAME = /^[a-z0-9][a-z0-9._:/-]{0,199}$/;

/**
 * Secrets at rest with envelope encryption: each secret is sealed (AES-256-GCM) with a data key; data
 * keys are sealed with the master key from configuration. Rotating the data key re-seals every secret
 * under a new one; rotating the master key only re-seals the (few) data keys. Plaintext never leaves
 * this class except to the code that injects it upstream, and is never returned by an API or logged.
 */
export class Vault {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  #masterKey: Uint8Array;
  /** Opened data keys by id. Cleared on rotation events from any replica. */
  readonly #dataKeys = new Map<string, Buffer>();

  constructor(store: Store, audit: AuditLog, masterKey: Uint8Array, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#audit = audit;
    this.#masterKey = masterKey;
    this.#clock = options.clock ?? systemClock;
    store.events.on(VAULT_CHANGED, () => this.#dataKeys.clear());
    store.events.on('resync', () => this.#dataKeys.clear());
  }

  /** Stores (or replaces) a secret under `name`. Inside `tx` when given, so it commits with its owner's change. */
  async put(name: string, plaintext: string, actor: string, tx?: Tx): Promise<void> {
    if (!NAME.test(name)) throw new MandateError('VAULT_NAME_INVALID', 'secret names are lowercase letters, digits and ._:/-', 400);
    const work = async (t: Tx) => {
      const keyId = await this.#currentKeyId(t);
      const key = await this.#dataKey(t, keyId);
      const now = this.#clock.now().toISOString();
      const existing = await t.db.selectFrom('vault_secrets').select('id').where('name', '=', name).executeTakeFirst();
      const id = existing?.id ?? newId('sec');
      const ciphertext = seal(key, plaintext, `vault:${id}`);
      if (existing) await t.db.updateTable('vault_secrets').set({ data_key_id: keyId, ciphertext, updated_at: now }).where('id', '=', id).execute();
      else await t.db.insertInto('vault_secrets').values({ id, name, data_key_id: keyId, ciphertext, created_at: now, updated_at: now }).execute();
      // The audit record names the secret, never its value.
      await this.#audit.appendIn(t, { actor, action: existing ? 'vault.secret.update' : 'vault.secret.create', target: name, outcome: 'success', details: { dataKey: keyId } });
      t.publish(VAULT_CHANGED, { name });
    };
    if (tx) await work(tx);
    else await this.#store.transaction(work);
  }

  /** The plaintext, for injection upstream only. Undefined when there is no such secret. */
  async reveal(name: string): Promise<string | undefined> {
    const row = await this.#store.db.selectFrom('vault_secrets').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    const key = await this.#dataKey(undefined, row.data_key_id);
    return open(key, row.ciphertext, `vault:${row.id}`).toString('utf8');
  }

  async has(name: string): Promise<boolean> {
    return (await this.#store.db.selectFrom('vault_secrets').select('id').where('name', '=', name).executeTakeFirst()) !== undefined;
  }

  async remove(name: string, actor: string, tx?: Tx): Promise<boolean> {
    const work = async (t: Tx) => {
      const result = await t.db.deleteFrom('vault_secrets').where('name', '=', name).executeTakeFirst();
      const removed = Number(result.numDeletedRows) > 0;
      if (removed) {
        await this.#audit.appendIn(t, { actor, action: 'vault.secret.delete', target: name, outcome: 'success' });
        t.publish(VAULT_CHANGED, { name });
      }
      return removed;
    };
    return tx ? work(tx) : this.#store.transaction(work);
  }

  /** Names and metadata only: values never leave the vault through a listing. */
  async list(): Promise<{ name: string; dataKeyId: string; createdAt: string; updatedAt: string }[]> {
    const rows = await this.#store.db.selectFrom('vault_secrets').select(['name', 'data_key_id', 'created_at', 'updated_at']).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, dataKeyId: r.data_key_id, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  /**
   * Data-key rotation: a fresh data key becomes current, every secret is re-sealed under it and the old
   * keys are retired (kept, so a backup from before the rotation can still be read with the master key).
   */
  async rotateDataKey(actor: string): Promise<{ dataKeyId: string; resealed: number }> {
    return this.#store.transaction(async (tx) => {
      const now = this.#clock.now().toISOString();
      const fresh = randomBytes(32);
      const id = newId('dk');
      await tx.db.updateTable('vault_data_keys').set({ retired_at: now }).where('retired_at', 'is', null).execute();
      await tx.db.insertInto('vault_data_keys').values({ id, sealed_key: seal(this.#masterKey, fresh, `vault-data-key:${id}`), created_at: now, retired_at: null }).execute();
      const rows = await tx.db.selectFrom('vault_secrets').selectAll().execute();
      for (const row of rows) {
        const old = await this.#dataKey(tx, row.data_key_id);
        const plaintext = open(old, row.ciphertext, `vault:${row.id}`);
        await tx.db.updateTable('vault_secrets').set({ data_key_id: id, ciphertext: seal(fresh, plaintext, `vault:${row.id}`), updated_at: now }).where('id', '=', row.id).execute();
      }
      await this.#audit.appendIn(tx, { actor, action: 'vault.rotate', target: id, outcome: 'success', details: { resealed: rows.length } });
      tx.publish(VAULT_CHANGED, { rotated: id });
      return { dataKeyId: id, resealed: rows.length };
    });
  }

  /**
   * Master-key rotation: every data key is opened with the current master key and re-sealed with
   * `newMasterKey`. Secrets themselves are untouched. Configure the new key before the next start.
   */
  async rewrapMasterKey(newMasterKey: Uint8Array, actor: string): Promise<{ dataKeys: number }> {
    if (newMasterKey.length !== 32) throw new MandateError('VAULT_MASTER_KEY_INVALID', 'the new master key must be 32 bytes', 400);
    const count = await this.#store.transaction(async (tx) => {
      const rows = await tx.db.selectFrom('vault_data_keys').selectAll().execute();
      for (const row of rows) {
        const key = open(this.#masterKey, row.sealed_key, `vault-data-key:${row.id}`);
        await tx.db.updateTable('vault_data_keys').set({ sealed_key: seal(newMasterKey, key, `vault-data-key:${row.id}`) }).where('id', '=', row.id).execute();
      }
      await this.#audit.appendIn(tx, { actor, action: 'vault.rewrap', outcome: 'success', details: { dataKeys: rows.length } });
      tx.publish(VAULT_CHANGED, { rewrapped: true });
      return rows.length;
    });
    this.#masterKey = newMasterKey;
    this.#dataKeys.clear();
    return { dataKeys: count };
  }

  async #currentKeyId(tx: Tx): Promise<string> {
    const current = await tx.db.selectFrom('vault_data_keys').select('id').where('retired_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
    if (current) return current.id;
    const id = newId('dk');
    await tx.db
      .insertInto('vault_data_keys')
      .values({ id, sealed_key: seal(this.#masterKey, randomBytes(32), `vault-data-key:${id}`), created_at: this.#clock.now().toISOString(), retired_at: null })
      .execute();
    return id;
  }

  async #dataKey(tx: Tx | undefined, id: string): Promise<Buffer> {
    const cached = this.#dataKeys.get(id);
    if (cached) return cached;
    const db = tx?.db ?? this.#store.db;
    const row = await db.selectFrom('vault_data_keys').select('sealed_key').where('id', '=', id).executeTakeFirst();
    if (!row) throw new MandateError('VAULT_KEY_MISSING', `data key ${id} is missing`, 500);
    const key = open(this.#masterKey, row.sealed_key, `vault-data-key:${id}`);
    this.#dataKeys.set(id, key);
    return key;
  }
}
