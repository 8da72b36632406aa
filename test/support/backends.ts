import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Store } from '../../src/store/index.ts';

/** The machine's PostgreSQL. Tests that use it fail (never skip) when it is unreachable. */
export const PG_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface TestDatabase {
  /** Store options for this database: pass to Store.open or to the server config. */
  options: { dataDir: string; databaseUrl?: string; schema?: string };
  cleanup(): Promise<void>;
}

/** A fresh, empty database: a temporary SQLite directory, or a new PostgreSQL schema. */
export async function freshDatabase(backend: Backend): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mandate-test-'));
  if (backend === 'sqlite') {
    return { options: { dataDir }, cleanup: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  return {
    options: { dataDir, databaseUrl: PG_URL, schema },
    async cleanup() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function openTestStore(backend: Backend, listen = false): Promise<{ store: Store; db: TestDatabase; close(): Promise<void> }> {
  const db = await freshDatabase(backend);
  const store = await Store.open({ ...db.options, listen });
  await store.migrate();
  return {
    store,
    db,
    async close() {
      await store.close();
      await db.cleanup();
    },
  };
}
