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
  return hashRecordWithDetails(record, canonicalJson(record.details));
}

/**
 * `hashRecord` when the canonical JSON of `details` is already at hand (the writer computes it once for
 * the stored row). The text is the RFC 8785 form of the whole record: members in code-unit order
 * (action, actor, details, outcome, prevHash, seq, target, ts).
 */
export function hashRecordWithDetails(record: Omit<AuditRecord, 'hash' | 'details'>, detailsJson: string): string {
  const s = JSON.stringify;
  return sha256Hex(
    `{"action":${s(record.action)},"actor":${s(record.actor)},"details":${detailsJson},"outcome":${s(record.outcome)},"prevHash":${s(record.prevHash)},"seq":${canonicalJson(record.seq)},"target":${record.target === null ? 'null' : s(record.target)},"ts":${s(record.ts)}}`,
  );
}

/** The message a checkpoint signs: it commits to the whole chain up to `seq`. */
export function checkpointMessage(seq: number, hash: string): string {
  return canonicalJson({ type: 'mandate.audit.checkpoint', seq, hash });
}
