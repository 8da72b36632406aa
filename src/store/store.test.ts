import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../../test/support/backends.ts';
import { Store } from './store.ts';
import { migrations } from './migrations/index.ts';

describe('store migrations', () => {
  it('three replicas starting at once on one PostgreSQL migrate exactly once, without errors', async () => {
    const db = await freshDatabase('postgres');
    const stores = await Promise.all([0, 1, 2].map(() => Store.open(db.options)));
    try {
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      // Exactly one replica applied each migration; the others found nothing to do.
      expect(applied.flat().sort()).toEqual(Object.keys(migrations).sort());
      const rows = await stores[0]!.db.selectFrom('kysely_migration' as never).selectAll().execute();
      expect(rows).toHaveLength(Object.keys(migrations).length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db.cleanup();
    }
  });

  it('the embedded store migrates once and is idempotent on restart', async () => {
    const db = await freshDatabase('sqlite');
    try {
      const first = await Store.open(db.options);
      expect(await first.migrate()).toEqual(Object.keys(migrations).sort());
      await first.close();
      const second = await Store.open(db.options);
      expect(await second.migrate()).toEqual([]);
      await second.close();
    } finally {
      await db.cleanup();
    }
  });

  it('reports an unreachable PostgreSQL as STORE_UNAVAILABLE', async () => {
    await expect(Store.open({ dataDir: '/tmp', databaseUrl: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});
