/**
 * Behaviour nobody on this project wrote: the Cedar integration corpus (1,225 requests, expected
 * decisions from cedar-wasm) through Mandate's own evaluator, and the OpenID AuthZEN interop scenarios
 * through a real server over HTTP. The data is the shared conformance folder beside the repository
 * (../shared/conformance, as CI lays it out); a clone without it skips these, saying why.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUTHZEN_DATA, runAuthzenScenarios } from '../scripts/conformance-authzen.ts';
import { CEDAR_CORPUS, runCedarCorpus } from '../scripts/conformance-cedar.ts';

describe.skipIf(!existsSync(CEDAR_CORPUS))(`Cedar conformance corpus (${CEDAR_CORPUS})`, () => {
  it('decides every request as Cedar does: decision, reasons and erroring policies', () => {
    const { passed, failed, diffs } = runCedarCorpus(CEDAR_CORPUS);
    expect(diffs.slice(0, 5)).toEqual([]);
    expect(failed).toBe(0);
    expect(passed).toBeGreaterThanOrEqual(1225);
  }, 120_000);
});

describe.skipIf(!existsSync(AUTHZEN_DATA))(`AuthZEN interop scenarios (${AUTHZEN_DATA})`, () => {
  it('answers every evaluation and batch of the Todo and API-gateway scenarios as expected', async () => {
    const { passed, failed, diffs } = await runAuthzenScenarios(AUTHZEN_DATA);
    expect(diffs.slice(0, 5)).toEqual([]);
    expect(failed).toBe(0);
    expect(passed).toBeGreaterThan(60);
  }, 120_000);
});
