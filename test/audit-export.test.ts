import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { runCli } from './support/cli.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe('audit export and offline verification', () => {
  let server: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'mandate-export-'));

  const cli = (args: string[]) => runCli(server, args);

  beforeAll(async () => {
    server = await startTestServer('sqlite', { auditCheckpointEvery: 5 });
    const owner = (await (await server.api('POST', '/api/v1/humans', { email: 'exp@example.com', displayName: 'Exporter' })).json()) as { id: string };
    for (let i = 0; i < 12; i++) await server.api('POST', '/api/v1/agents', { name: `agent-${i}`, ownerId: owner.id });
    await server.services.audit.append({ actor: 'agent:x', action: 'tools/call', target: 'Tool::"crm/search"', outcome: 'deny', details: { policies: ['policy1'] } });
  });
  afterAll(() => server.stop());

  for (const format of ['jsonl', 'ocsf'] as const) {
    it(`a ${format} export verifies offline against trusted keys, and a modified export fails at the modified event`, async () => {
      const exported = await cli(['audit', 'export', '--format', format]);
      expect(exported.status).toBe(0);
      const path = join(dir, `audit.${format}`);
      writeFileSync(path, exported.stdout);
      const keysPath = join(dir, 'keys.json');
      writeFileSync(keysPath, JSON.stringify(await (await server.api('GET', '/api/v1/audit/checkpoints')).json()));

      const lines = readFileSync(path, 'utf8').trim().split('\n');
      // Background work may have appended events since setup: count what the export holds.
      const events = lines.length - 1;
      expect(events).toBeGreaterThanOrEqual(14);
      const ok = await cli(['audit', 'verify', '--file', path, '--keys', keysPath, '--json']);
      expect(ok.status).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, events, checkpoints: Math.floor(events / 5) });

      if (format === 'ocsf') {
        const parsed = lines.slice(1).map((line) => JSON.parse(line) as { class_uid: number; activity_id: number; status: string; unmapped: { mandate: { seq: number; action: string } } });
        expect(parsed.find((e) => e.unmapped.mandate.action === 'tools/call')).toMatchObject({ class_uid: 6003, status: 'Failure' });
        expect(parsed.find((e) => e.unmapped.mandate.action === 'agent.create')).toMatchObject({ class_uid: 3001, activity_id: 1 });
      }
      // Line i holds event i (line 0 is the header). Alter event 7's outcome (an agent.create).
      const altered = [...lines];
      expect(altered[7]).toContain('"success"');
      altered[7] = altered[7]!.replace('"success"', '"failure"');
      writeFileSync(path, `${altered.join('\n')}\n`);
      const broken = await cli(['audit', 'verify', '--file', path, '--keys', keysPath]);
      expect(broken.status).toBe(1);
      expect(broken.stdout).toContain('BROKEN at seq 7');

      // Dropping an event is caught where the gap starts.
      writeFileSync(path, `${lines.filter((_, i) => i !== 3).join('\n')}\n`);
      expect((await cli(['audit', 'verify', '--file', path, '--keys', keysPath])).stdout).toContain('BROKEN at seq 3');

      // Cutting the tail past a checkpoint is caught by the checkpoint.
      writeFileSync(path, `${lines.slice(0, 8).join('\n')}\n`);
      expect((await cli(['audit', 'verify', '--file', path, '--keys', keysPath])).stdout).toContain('BROKEN at seq 10');
    });
  }

  it('a chain recomputed and re-signed with a forger’s key fails against the trusted keys', async () => {
    const exported = (await cli(['audit', 'export', '--format', 'jsonl'])).stdout.trim().split('\n');
    const header = JSON.parse(exported[0]!) as { keys: { kid: string }[] };
    const { publicKey } = generateKeyPairSync('ed25519');
    header.keys = [{ ...(publicKey.export({ format: 'jwk' }) as object), kid: header.keys[0]!.kid }];
    const path = join(dir, 'forged.jsonl');
    writeFileSync(path, `${[JSON.stringify(header), ...exported.slice(1)].join('\n')}\n`);
    // With the file's own (forged) keys the signatures do not match the forger's key either.
    expect((await cli(['audit', 'verify', '--file', path])).status).toBe(1);
  });
});
