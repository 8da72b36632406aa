import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../core/crypto.ts';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  /** Who acted: `admin`, `human:<id>`, `agent:<id>`, `scim`, `system:<job>`. */
  actor: string;
  action: string;
  target?: string | null;
  /** `success`, `failure`, `allow`, `deny`, … */
  outcome: string;
  details?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/**
 * The hash covers every field of the event and the previous hash, over the RFC 8785 canonical JSON
 * encoding, so changing, inserting, removing or reordering any event breaks every later link.
 */
export function hashRecord(record: Omit<AuditRecord, 'hash'>): string {
  return sha256Hex(
    canonicalJson({
      seq: record.seq,
      ts: record.ts,
      actor: record.actor,
      action: record.action,
      target: record.target,
      outcome: record.outcome,
      details: record.details,
      prevHash: record.prevHash,
    }),
  );
}

/** The message a checkpoint signs: it commits to the whole chain up to `seq`. */
export function checkpointMessage(seq: number, hash: string): string {
  return canonicalJson({ type: 'mandate.audit.checkpoint', seq, hash });
}
