import { canonicalJson } from '../core/canonical-json.ts';
import { MandateError } from '../core/errors.ts';
import { storableText, wellFormedDeep } from '../core/json-text.ts';
import { checkpointMessage, GENESIS_HASH, hashRecordWithDetails, type AuditInput } from './record.ts';
import type { KeyObject } from 'node:crypto';
import { signEd25519 } from '../keys/ed25519.ts';
import type { AuditCheckpointTable, AuditEventTable } from '../store/schema.ts';

/**
 * One event ready to be chained: its details already in RFC 8785 canonical JSON, the exact text that is
 * both stored and hashed. Made per event, so an event whose details cannot be encoded fails alone
 * instead of taking its group commit down with it.
 */
export interface ChainEntry {
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  details: string;
}

/**
 * Every string is made well-formed UTF-16 before it is hashed (and the four text columns lose U+0000,
 * which PostgreSQL text cannot hold: one such event would fail its whole group commit). The store keeps UTF-8, which cannot hold
 * a lone surrogate (it becomes U+FFFD): hashing the JavaScript string would hash something other than
 * what is stored, and the chain would read as broken at that row — and unverified after it — forever.
 * Entry points refuse such text (400, JSON-RPC invalid params); this is the backstop for text that
 * arrives another way (a claim in a signed JWT, an upstream's answer), so no input can break the chain.
 */
export function chainEntry(input: AuditInput): ChainEntry {
  return {
    actor: storableText(input.actor),
    action: storableText(input.action),
    target: input.target == null ? null : storableText(input.target),
    outcome: storableText(input.outcome),
    details: canonicalDetails(input.details ?? {}),
  };
}

function canonicalDetails(details: Record<string, unknown>): string {
  const text = canonicalJson(details);
  // JSON.stringify writes a lone surrogate as a `\udXXX` escape (and a valid pair as itself), so only a
  // text with such an escape can need the (rarer, slower) well-formed copy.
  return text.includes('\\ud') ? canonicalJson(wellFormedDeep(details)) : text;
}

/** The last stored event (none in an empty log). */
export interface ChainTail {
  seq: number;
  hash: string;
}

/** Links `entries` after `tail`: consecutive sequence numbers, each hash covering the one before. */
export function chainRows(tail: ChainTail | undefined, entries: readonly ChainEntry[], ts: string): AuditEventTable[] {
  let seq = tail?.seq ?? 0;
  let prevHash = tail?.hash ?? GENESIS_HASH;
  const rows: AuditEventTable[] = [];
  for (const entry of entries) {
    seq += 1;
    const hash = hashRecordWithDetails({ seq, ts, actor: entry.actor, action: entry.action, target: entry.target, outcome: entry.outcome, prevHash }, entry.details);
    rows.push({ seq, ts, actor: entry.actor, action: entry.action, target: entry.target, outcome: entry.outcome, details: entry.details, prev_hash: prevHash, hash });
    prevHash = hash;
  }
  return rows;
}

/**
 * The signed checkpoints `rows` carry: one at every `every`-th event. Without a key none can be made,
 * and the append must fail rather than leave a gap a verifier would flag.
 */
export function checkpointRows(rows: readonly AuditEventTable[], every: number, key: { id: string; privateKey: KeyObject } | undefined): AuditCheckpointTable[] {
  const due = rows.filter((row) => row.seq % every === 0);
  if (due.length === 0) return [];
  if (!key) throw new MandateError('AUDIT_NOT_INITIALISED', 'AuditLog.init() was not called', 500);
  return due.map((row) => ({ seq: row.seq, hash: row.hash, signature: signEd25519(key.privateKey, checkpointMessage(row.seq, row.hash)), key_id: key.id, ts: row.ts }));
}
