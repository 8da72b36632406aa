import { resolve } from 'node:path';
import type { StoreOptions } from '../store/index.ts';

/** Where the offline commands (migrate, audit) find the store: the same settings `serve` reads. */
export function storeOptions(dataDir?: string): StoreOptions {
  return {
    dataDir: resolve(dataDir ?? process.env.MANDATE_DATA_DIR ?? './.mandate'),
    databaseUrl: process.env.MANDATE_DATABASE_URL || undefined,
    schema: process.env.MANDATE_DATABASE_SCHEMA || undefined,
  };
}
