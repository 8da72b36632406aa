import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { AuditLog } from '../audit/index.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { Vault } from './vault.ts';

describe.each(BACKENDS)('vault (%s)', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  let audit: AuditLog;
  const master = randomBytes(32);

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    audit = new AuditLog(store, new KeyRing(store, master), { checkpointEvery: 1000 });
    await audit.init();
  });
  afterAll(async () => close());

  it('stores secrets sealed under a data key that is itself sealed by the master key', async () => {
    const vault = new Vault(store, audit, master);
    await vault.put('mcp/a/credential', 'super-secret-value', 'admin');
    expect(await vault.reveal('mcp/a/credential')).toBe('super-secret-value');
    const row = await store.db.selectFrom('vault_secrets').selectAll().where('name', '=', 'mcp/a/credential').executeTakeFirstOrThrow();
    expect(row.ciphertext).not.toContain('super-secret');
    const keys = await store.db.selectFrom('vault_data_keys').selectAll().execute();
    expect(keys).toHaveLength(1);
    expect(keys[0]!.sealed_key.startsWith('v1.')).toBe(true);
    // The listing and the audit chain name the secret, never its value.
    expect(JSON.stringify(await vault.list())).not.toContain('super-secret');
    await audit.flush();
    expect(JSON.stringify((await audit.list(0, 1000)).items)).not.toContain('super-secret');
  });

  it('another master key cannot open anything', async () => {
    const wrong = new Vault(store, audit, randomBytes(32));
    await expect(wrong.reveal('mcp/a/credential')).rejects.toMatchObject({ code: 'CRYPTO_SEALED_INVALID' });
  });

  it('data-key rotation re-seals every secret under a fresh key', async () => {
    const vault = new Vault(store, audit, master);
    await vault.put('mcp/b/credential', 'second', 'admin');
    const before = await store.db.selectFrom('vault_secrets').select(['name', 'ciphertext', 'data_key_id']).execute();
    const { dataKeyId, resealed } = await vault.rotateDataKey('admin');
    expect(resealed).toBe(2);
    const after = await store.db.selectFrom('vault_secrets').select(['name', 'ciphertext', 'data_key_id']).execute();
    for (const row of after) {
      expect(row.data_key_id).toBe(dataKeyId);
      expect(before.find((b) => b.name === row.name)!.ciphertext).not.toBe(row.ciphertext);
    }
    expect(await vault.reveal('mcp/a/credential')).toBe('super-secret-value');
    expect(await new Vault(store, audit, master).reveal('mcp/b/credential')).toBe('second');
  });

  it('master-key rotation re-wraps the data keys; the old master key no longer opens them', async () => {
    const vault = new Vault(store, audit, master);
    const next = randomBytes(32);
    await vault.rewrapMasterKey(next, 'admin');
    expect(await vault.reveal('mcp/a/credential')).toBe('super-secret-value');
    expect(await new Vault(store, audit, next).reveal('mcp/b/credential')).toBe('second');
    await expect(new Vault(store, audit, master).reveal('mcp/b/credential')).rejects.toMatchObject({ code: 'CRYPTO_SEALED_INVALID' });
  });

  it('refuses bad names and removes secrets', async () => {
    const vault = new Vault(store, audit, randomBytes(32));
    await expect(vault.put('Bad Name', 'x', 'admin')).rejects.toMatchObject({ code: 'VAULT_NAME_INVALID' });
    expect(await vault.remove('mcp/none', 'admin')).toBe(false);
  });
});
