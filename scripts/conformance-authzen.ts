/**
 * Development check (not part of the test suite): runs the OpenID AuthZEN interop scenarios in
 * ../shared/conformance/authzen through a real Mandate server over HTTP.
 *
 *   node scripts/conformance-authzen.ts [path to shared/conformance/authzen]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/core/config.ts';
import { startServer } from '../src/server/index.ts';

const dir = resolve(process.argv[2] ?? '../shared/conformance/authzen');
const scenarios = [
  { name: 'todo', decisions: 'decisions-authorization-api-1_0-02.json', policies: 'todo.cedar', entities: 'todo.entities.json' },
  { name: 'api-gateway', decisions: 'api-gateway-decisions.json', policies: 'api-gateway.cedar', entities: 'api-gateway.entities.json' },
];

let passed = 0;
let failed = 0;
for (const scenario of scenarios) {
  const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir: mkdtempSync(join(tmpdir(), 'mandate-authzen-')) });
  const server = await startServer(config);
  try {
    await server.services.pdp.importEntities(JSON.parse(readFileSync(join(dir, scenario.entities), 'utf8')) as unknown[], 'conformance', { replace: true });
    await server.services.pdp.apply(readFileSync(join(dir, scenario.policies), 'utf8'), {}, 'conformance');
    const data = JSON.parse(readFileSync(join(dir, scenario.decisions), 'utf8')) as Record<string, { request: unknown; expected: unknown }[]>;
    const post = async (path: string, body: unknown) =>
      (await fetch(`${server.url}/access/v1/${path}`, { method: 'POST', headers: { authorization: `Bearer ${config.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
    for (const [kind, cases] of Object.entries(data)) {
      for (const [i, c] of cases.entries()) {
        const answer = (await post(kind === 'evaluation' ? 'evaluation' : 'evaluations', c.request)) as { decision?: boolean; evaluations?: { decision: boolean }[] };
        const got = kind === 'evaluation' ? answer.decision : answer.evaluations?.map((e) => ({ decision: e.decision }));
        if (JSON.stringify(got) === JSON.stringify(c.expected)) passed += 1;
        else {
          failed += 1;
          if (failed <= 10) console.log(`FAIL ${scenario.name} ${kind}[${i}]: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(got)} for ${JSON.stringify(c.request)}`);
        }
      }
    }
  } finally {
    await server.close();
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
