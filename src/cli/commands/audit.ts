import type { JsonWebKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { exportLines, verifyExportFile, verifyStoredChain, type VerifyResult } from '../../audit/index.ts';
import { MandateError } from '../../core/errors.ts';
import { Store } from '../../store/index.ts';
import { storeOptions } from '../store-options.ts';

function report(result: VerifyResult, json: boolean | undefined, note = ''): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.ok) {
    const unsigned = result.events - (result.signedThrough ?? 0);
    const tail = unsigned > 0 ? `; events ${(result.signedThrough ?? 0) + 1}–${result.events} are covered by no signed checkpoint (hash chain only: rewritable by whoever wrote the file)` : '';
    process.stdout.write(`audit chain OK: ${result.events} events, ${result.checkpoints} signed checkpoints verified${tail}${note}\n`);
  }
  else process.stdout.write(`audit chain BROKEN at seq ${result.firstBadSeq}: ${result.reason} (${result.events} events verified before it)\n`);
  process.exitCode = result.ok ? 0 : 1;
}

function readKeys(path: string): JsonWebKey[] {
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { keys?: JsonWebKey[] } | JsonWebKey[];
  const keys = Array.isArray(parsed) ? parsed : parsed.keys;
  if (!keys) throw new MandateError('AUDIT_KEYS_INVALID', `${path} holds no keys (expected {"keys":[JWK…]} as served by /api/v1/audit/checkpoints)`);
  return keys;
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('verify and export the audit chain');

  audit
    .command('verify')
    .description('check every event hash, link and signed checkpoint; exit 1 naming the first bad event')
    .option('--data <dir>', 'data directory of the embedded store (default $MANDATE_DATA_DIR or ./.mandate)')
    .option('--file <export>', 'verify an export file offline instead of the store')
    .option('--keys <file>', 'with --file: trusted checkpoint public keys ({"keys":[JWK…]}), instead of those in the file')
    .option('--json', 'print the result as JSON')
    .action(async (o: { data?: string; file?: string; keys?: string; json?: boolean }) => {
      if (o.file) {
        const result = await verifyExportFile(o.file, { trustedKeys: o.keys ? readKeys(o.keys) : undefined });
        report(result, o.json, result.keysFrom === 'file' ? ' (keys taken from the export itself: pass --keys to check against keys you trust)' : '');
        return;
      }
      const store = await Store.open(storeOptions(o.data));
      try {
        report(await verifyStoredChain(store), o.json);
      } finally {
        await store.close();
      }
    });

  audit
    .command('export')
    .description('write the audit chain to standard output: a header line (keys, checkpoints), then one event per line')
    .option('--format <format>', 'jsonl or ocsf', 'jsonl')
    .option('--data <dir>', 'data directory of the embedded store')
    .action(async (o: { data?: string; format: string }) => {
      if (o.format !== 'jsonl' && o.format !== 'ocsf') throw new MandateError('AUDIT_FORMAT_UNKNOWN', `unknown format ${o.format} (jsonl, ocsf)`);
      const store = await Store.open(storeOptions(o.data));
      try {
        for await (const line of exportLines(store, o.format)) {
          if (!process.stdout.write(`${line}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      } finally {
        await store.close();
      }
    });
  return audit;
}
