/**
 * Second security review (docs/threat-model.md, "Review 2"): crafted exports that `mandate audit verify
 * --file` must not report as intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { hashRecord, type AuditRecord } from '../src/audit/record.ts';
import { runCli } from './support/cli.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe('audit export verification against crafted files', () => {
  let server: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-review2-'));
  let keysPath = '';
  const cli = (args: string[]) => runCli(server, args);
  const exportLines = async (format: 'jsonl' | 'ocsf') => {
    const out = await cli(['audit', 'export', '--format', format]);
    expect(out.status).toBe(0);
    return out.stdout.trim().split('\n');
  };
  const verify = async (lines: string[], name: string, keys = keysPath) => {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`);
    return cli(['audit', 'verify', '--file', path, ...(keys ? ['--keys', keys] : [])]);
  };

  beforeAll(async () => {
    server = await startTestServer('sqlite', { auditCheckpointEvery: 5 });
    const owner = (await (await server.api('POST', '/api/v1/humans', { email: 'r2@example.com', displayName: 'R2' })).json()) as { id: string };
    for (let i = 0; i < 12; i++) await server.api('POST', '/api/v1/agents', { name: `r2-agent-${i}`, ownerId: owner.id });
    await server.services.audit.append({ actor: 'agent:x', action: 'tools/call', target: 'Tool::"crm/export"', outcome: 'deny', details: {} });
    keysPath = join(dir, 'keys.json');
    writeFileSync(keysPath, JSON.stringify(await (await server.api('GET', '/api/v1/audit/checkpoints')).json()));
  });
  afterAll(() => server.stop());

  it('an OCSF export relabelled as jsonl does not hide altered OCSF fields', async () => {
    const lines = await exportLines('ocsf');
    const header = JSON.parse(lines[0]!) as { format: string };
    const denied = lines.findIndex((l) => l.includes('crm/export'));
    const altered = [JSON.stringify({ ...header, format: 'jsonl' }), ...lines.slice(1)];
    altered[denied] = altered[denied]!.replace('"status":"Failure"', '"status":"Success"');
    expect(altered[denied]).toContain('"status":"Success"');
    const out = await verify(altered, 'relabelled.jsonl');
    expect(out.status).toBe(1);
    // An unknown format is refused outright.
    const unknown = await verify([JSON.stringify({ ...header, format: 'csv' }), ...lines.slice(1)], 'unknown.jsonl');
    expect(unknown.status).not.toBe(0);
  });

  it('a jsonl line with fields outside the hash fails', async () => {
    const lines = await exportLines('jsonl');
    const altered = [...lines];
    altered[3] = JSON.stringify({ ...(JSON.parse(altered[3]!) as object), approvedBy: 'someone-else' });
    const out = await verify(altered, 'extra.jsonl');
    expect(out.status).toBe(1);
    expect(out.stdout).toContain('BROKEN at seq 3');
  });

  it('a rewritten tail with its checkpoints dropped is reported as unsigned, and non-Ed25519 keys are never used', async () => {
    const lines = await exportLines('jsonl');
    const header = JSON.parse(lines[0]!) as { checkpoints: { seq: number }[] };
    const records = lines.slice(1).map((l) => JSON.parse(l) as AuditRecord);
    // Rewrite event 7 and recompute every later hash; drop the checkpoints that covered them.
    let prev = records[5]!.hash;
    for (const r of records.slice(6)) {
      if (r.seq === 7) r.outcome = 'failure';
      r.prevHash = prev;
      const { hash: _h, ...body } = r;
      r.hash = hashRecord(body);
      prev = r.hash;
    }
    const forged = [JSON.stringify({ ...header, checkpoints: header.checkpoints.filter((c) => c.seq < 7) }), ...records.map((r) => JSON.stringify(r))];
    const out = await verify(forged, 'rewritten.jsonl');
    expect(out.stdout).toContain(`events 6–${records.length} are covered by no signed checkpoint`);
    const asJson = await cli(['audit', 'verify', '--file', join(dir, 'rewritten.jsonl'), '--keys', keysPath, '--json']);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ signedThrough: 5 });

    // An RSA key under the checkpoint key id is ignored: the checkpoint is then signed by an unknown key.
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const trusted = JSON.parse(await (await server.api('GET', '/api/v1/audit/checkpoints')).text()) as { keys: { kid: string }[] };
    const rsa = { ...publicKey.export({ format: 'jwk' }), kid: trusted.keys[0]!.kid };
    const rsaKeys = join(dir, 'rsa-keys.json');
    writeFileSync(rsaKeys, JSON.stringify({ keys: [rsa] }));
    const rsaOut = await verify(lines, 'rsa.jsonl', rsaKeys);
    expect(rsaOut.status).toBe(1);
    expect(rsaOut.stdout).toContain('unknown key');
  });
});
