/**
 * Runs the OpenID AuthZEN interop scenarios (shared/conformance/authzen, beside the repository)
 * through a real Mandate server over HTTP. `test/conformance.test.ts` runs it in `npm test`; by hand:
 *
 *   node scripts/conformance-authzen.ts [path to shared/conformance/authzen]
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/core/config.ts';
import { startServer } from '../src/server/index.ts';

/** shared/conformance/authzen beside the repository, found from this file (never the working directory). */
export const AUTHZEN_DATA = fileURLToPath(new URL('../../shared/conformance/authzen', import.meta.url));

const scenarios = [
  { name: 'todo', decisions: 'decisions-authorization-api-1_0-02.json', policies: 'todo.cedar', entities: 'todo.entities.json' },
  { name: 'api-gateway', decisions: 'api-gateway-decisions.json', policies: 'api-gateway.cedar', entities: 'api-gateway.entities.json' },
];

export async function runAuthzenScenarios(dir: string): Promise<{ passed: number; failed: number; diffs: string[] }> {
let passed = 0;
let failed = 0;
const diffs: string[] = [];
for (const scenario of scenarios) {
  const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir: mkdtempSync(join(tmpdir(), 'mandate-authzen-')) });
  const server = await startServer(config);
  try {
    await server.services.pdp.importEntities(JSON.parse(readFileSync(join(dir, scenario.entities), 'utf8')) as unknown[], 'conformance', { replace: true });
    // The scenarios' own vocabulary (Todo types and actions), not Mandate's schema: applied as forced.
    await server.services.pdp.apply(readFileSync(join(dir, scenario.policies), 'utf8'), { force: true }, 'conformance');
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
          diffs.push(`FAIL ${scenario.name} ${kind}[${i}]: expected ${JSON.stringify(c.expected)}, got ${JSON.stringify(got)} for ${JSON.stringify(c.request)}`);
        }
      }
    }
  } finally {
    await server.close();
  }
}
return { passed, failed, diffs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { passed, failed, diffs } = await runAuthzenScenarios(resolve(process.argv[2] ?? AUTHZEN_DATA));
  for (const d of diffs.slice(0, 10)) console.log(d);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
