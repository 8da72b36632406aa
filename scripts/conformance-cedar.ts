/**
 * Runs the Cedar conformance corpus (shared/conformance/cedar beside the repository, or the folder given
 * as the first argument; `test/conformance.test.ts` runs it in `npm test`) through `runPolicyEval` and compares each decision with the expected one: decision, reasons
 * as a set, and the set of policy ids that errored (error messages need not match).
 *
 *   node scripts/conformance-cedar.ts [corpus-dir]
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPolicyEval } from '../src/policy/index.ts';

/** shared/conformance/cedar beside the repository, found from this file (never an absolute path). */
export const CEDAR_CORPUS = fileURLToPath(new URL('../../shared/conformance/cedar', import.meta.url));

function* testDirs(dir: string): Generator<string> {
  if (existsSync(join(dir, 'policies.cedar'))) {
    yield dir;
    return;
  }
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* testDirs(p);
  }
}

interface Expected {
  decision: string;
  reasons: string[];
  errors: { policyId: string }[];
}

const key = (d: Expected): string =>
  JSON.stringify({ decision: d.decision, reasons: [...d.reasons].sort(), errors: [...new Set(d.errors.map((e) => e.policyId))].sort() });

export function runCedarCorpus(root: string): { passed: number; failed: number; diffs: string[] } {
let passed = 0;
let failed = 0;
const diffs: string[] = [];
for (const dir of testDirs(root)) {
  const name = relative(root, dir);
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  const requests = read('requests.jsonl').split('\n').filter((l) => l.trim() !== '');
  const expected = read('expected.jsonl').split('\n').filter((l) => l.trim() !== '');
  let actual: string[];
  try {
    actual = runPolicyEval({ policies: read('policies.cedar'), entities: read('entities.json') }, requests.join('\n'))
      .split('\n')
      .filter((l) => l !== '');
  } catch (e) {
    failed += expected.length;
    diffs.push(`${name}: threw ${(e as Error).message}`);
    continue;
  }
  expected.forEach((exp, i) => {
    const a = actual[i];
    const ek = key(JSON.parse(exp) as Expected);
    const ak = a === undefined ? 'missing' : key(JSON.parse(a) as Expected);
    if (ek === ak) passed++;
    else {
      failed++;
      diffs.push(`${name} request ${i}:\n  request  ${requests[i]}\n  expected ${ek}\n  actual   ${a}`);
    }
  });
}
return { passed, failed, diffs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { passed, failed, diffs } = runCedarCorpus(process.argv[2] ?? CEDAR_CORPUS);
  for (const d of diffs.slice(0, Number(process.env.SHOW ?? 8))) console.log(d);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}
