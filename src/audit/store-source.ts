import type { Store } from '../store/index.ts';
import { publicKeys } from '../keys/index.ts';
import { CHECKPOINT_KEY_PURPOSE, rowToRecord } from './audit-log.ts';
import type { AuditRecord } from './record.ts';
import { verifyChain, type Checkpoint, type VerifyResult } from './verify.ts';

/** Reads the chain from the store in pages, in sequence order. */
export async function* storedEvents(store: Store, pageSize = 5000): AsyncGenerator<AuditRecord> {
  let after = 0;
  for (;;) {
    const rows = await store.db.selectFrom('audit_events').selectAll().where('seq', '>', after).orderBy('seq').limit(pageSize).execute();
    for (const row of rows) yield rowToRecord(row);
    if (rows.length < pageSize) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

export async function storedCheckpoints(store: Store): Promise<Checkpoint[]> {
  const rows = await store.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
  return rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, signature: r.signature, keyId: r.key_id }));
}

export async function verifyStoredChain(store: Store): Promise<VerifyResult> {
  return verifyChain(storedEvents(store), await storedCheckpoints(store), await publicKeys(store, CHECKPOINT_KEY_PURPOSE));
}
