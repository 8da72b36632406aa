import type { JsonWebKey } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { canonicalJson } from '../core/canonical-json.ts';
import { MandateError } from '../core/errors.ts';
import { publicKeys } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { CHECKPOINT_KEY_PURPOSE } from './audit-log.ts';
import { toOcsf } from './ocsf.ts';
import type { AuditRecord } from './record.ts';
import { storedCheckpoints, storedEvents } from './store-source.ts';
import { verifyChain, type Checkpoint, type VerifyResult } from './verify.ts';

export type ExportFormat = 'jsonl' | 'ocsf';

export interface ExportHeader {
  type: 'mandate.audit.export';
  version: 1;
  format: ExportFormat;
  /** Public keys of the checkpoint signatures (JWK, `kid` = key id). */
  keys: JsonWebKey[];
  /** Signed checkpoints covering the exported events. */
  checkpoints: Checkpoint[];
}

/**
 * An export a third party can verify offline: a header line (keys and signed checkpoints), then one
 * event per line in sequence order. In `ocsf` form each event line is an OCSF object carrying the
 * original record in `unmapped.mandate`, so it verifies the same way.
 */
export async function* exportLines(store: Store, format: ExportFormat): AsyncGenerator<string> {
  const keys = await publicKeys(store, CHECKPOINT_KEY_PURPOSE);
  const header: ExportHeader = { type: 'mandate.audit.export', version: 1, format, keys: [...keys.values()], checkpoints: await storedCheckpoints(store) };
  yield JSON.stringify(header);
  for await (const event of storedEvents(store)) yield JSON.stringify(format === 'ocsf' ? toOcsf(event) : event);
}

export interface FileVerifyOptions {
  /** Keys obtained out of band (trusted). Without them the keys in the file are used, and the result says so. */
  trustedKeys?: JsonWebKey[] | undefined;
}

/** Verifies an export file as written by `exportLines`, streaming it line by line. */
export async function verifyExportFile(path: string, options: FileVerifyOptions = {}): Promise<VerifyResult & { keysFrom: 'trusted' | 'file' }> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  let header: ExportHeader;
  try {
    header = JSON.parse(first.done ? '' : first.value) as ExportHeader;
    if (header.type !== 'mandate.audit.export') throw new Error('not a header');
    // The header is not signed: an unknown format must not fall back to some lenient reading.
    if (header.format !== 'jsonl' && header.format !== 'ocsf') throw new Error('unknown format');
    if (!Array.isArray(header.checkpoints) || !Array.isArray(header.keys)) throw new Error('malformed header');
  } catch {
    throw new MandateError('AUDIT_EXPORT_INVALID', `${path} does not start with a Mandate audit export header`);
  }
  const keys = options.trustedKeys ?? header.keys;
  // Checkpoints are Ed25519 (OKP) signatures: a key of any other type is never used to accept one.
  const keyMap = new Map(keys.filter((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.kid === 'string').map((k) => [k.kid as string, k]));
  let lineNumber = 1;
  // In OCSF form the mapped fields are derived from the signed record: they must match it exactly.
  const wrappers = new Map<number, string>();
  async function* events(): AsyncGenerator<AuditRecord> {
    for (;;) {
      const next = await lines.next();
      if (next.done) return;
      lineNumber += 1;
      if (next.value.trim() === '') continue;
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(next.value) as Record<string, unknown>;
      } catch {
        throw new MandateError('AUDIT_EXPORT_INVALID', `line ${lineNumber} is not JSON`);
      }
      const unmapped = value.unmapped as { mandate?: AuditRecord } | undefined;
      if (header.format === 'ocsf') {
        if (!unmapped?.mandate) throw new MandateError('AUDIT_EXPORT_INVALID', `line ${lineNumber} has no unmapped.mandate record`);
        wrappers.set(unmapped.mandate.seq, canonicalJson(value));
      } else wrappers.set((value as { seq?: number }).seq ?? -1, canonicalJson(value));
      // A jsonl line is the record itself. Unwrapping `unmapped.mandate` here too let an OCSF export whose
      // header was switched to jsonl verify while its mapped fields (what a SIEM reads) were altered.
      yield header.format === 'ocsf' ? (unmapped!.mandate as AuditRecord) : (value as unknown as AuditRecord);
    }
  }
  const checkWrapper = (event: AuditRecord): string | undefined => {
    const wrapper = wrappers.get(event.seq);
    wrappers.delete(event.seq);
    if (header.format === 'ocsf') return wrapper === canonicalJson(toOcsf(event)) ? undefined : 'OCSF fields do not match the signed record (altered)';
    // Fields outside the hash (added to a jsonl line) would be read by consumers but never verified.
    const exact = { seq: event.seq, ts: event.ts, actor: event.actor, action: event.action, target: event.target, outcome: event.outcome, details: event.details, prevHash: event.prevHash, hash: event.hash };
    return wrapper === canonicalJson(exact) ? undefined : 'the line holds fields the hash does not cover (altered)';
  };
  const result = await verifyChain(events(), header.checkpoints, keyMap, checkWrapper);
  return { ...result, keysFrom: options.trustedKeys ? 'trusted' : 'file' };
}
