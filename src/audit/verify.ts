import type { JsonWebKey } from 'node:crypto';
import { verifyEd25519 } from '../keys/index.ts';
import { checkpointMessage, GENESIS_HASH, hashRecord, type AuditRecord } from './record.ts';

export interface Checkpoint {
  seq: number;
  hash: string;
  signature: string;
  keyId: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Events checked. */
  events: number;
  /** Checkpoints whose signature was checked. */
  checkpoints: number;
  /**
   * Highest sequence number covered by a verified signature (0: none). Events after it are tied to the
   * signing key by nothing: whoever can write the export can rewrite them and recompute their hashes
   * (dropping the checkpoints that covered them), so a long unsigned tail is a warning sign.
   */
  signedThrough?: number;
  /** The first sequence number at which the chain is broken. */
  firstBadSeq?: number;
  reason?: string;
}

/**
 * Checks a chain from its first event: contiguous sequence numbers, each event's hash recomputed, each
 * link to the previous hash, and every signed checkpoint against the event it names. Streams, so an
 * export of any length verifies in constant memory.
 */
export async function verifyChain(
  events: AsyncIterable<AuditRecord>,
  checkpoints: Checkpoint[],
  publicKeys: Map<string, JsonWebKey>,
  /** An extra per-event check (e.g. that an OCSF wrapper matches its record); returns a reason to fail. */
  extraCheck?: (event: AuditRecord) => string | undefined,
): Promise<VerifyResult> {
  const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  let checked = 0;
  let signedThrough = 0;
  const fail = (seq: number, reason: string): VerifyResult => ({ ok: false, events: count, checkpoints: checked, firstBadSeq: seq, reason });

  for await (const event of events) {
    if (event.seq !== expectedSeq) return fail(expectedSeq, `expected event ${expectedSeq}, found ${event.seq} (missing or reordered events)`);
    if (event.prevHash !== prevHash) return fail(event.seq, 'previous-hash link does not match the preceding event');
    const { hash: _stored, ...body } = event;
    if (hashRecord(body) !== event.hash) return fail(event.seq, 'event content does not match its hash (altered)');
    const extra = extraCheck?.(event);
    if (extra) return fail(event.seq, extra);
    const checkpoint = bySeq.get(event.seq);
    if (checkpoint) {
      const key = publicKeys.get(checkpoint.keyId);
      if (!key) return fail(event.seq, `checkpoint signed by unknown key ${checkpoint.keyId}`);
      if (checkpoint.hash !== event.hash) return fail(event.seq, 'checkpoint hash does not match the event');
      if (!verifyEd25519(key, checkpointMessage(checkpoint.seq, checkpoint.hash), checkpoint.signature)) {
        return fail(event.seq, 'checkpoint signature is invalid');
      }
      checked += 1;
      signedThrough = event.seq;
      bySeq.delete(event.seq);
    }
    prevHash = event.hash;
    expectedSeq += 1;
    count += 1;
  }
  // A checkpoint beyond the last event means events were cut off the end.
  const beyond = [...bySeq.keys()].sort((a, b) => a - b)[0];
  if (beyond !== undefined) return fail(beyond, `checkpoint at ${beyond} but the chain ends at ${expectedSeq - 1} (truncated)`);
  return { ok: true, events: count, checkpoints: checked, signedThrough };
}
