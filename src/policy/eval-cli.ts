/**
 * `mandate policy eval`: one JSON request per input line → one JSON decision per output line, in order.
 * Input lines: {"principal":{type,id},"action":{type,id},"resource":{type,id},"context":{...}}.
 */
import { MandateError } from '../core/errors.ts';
import { authorize } from './authorize.ts';
import type { Decision } from './authorize.ts';
import { createEntityStore } from './entities.ts';
import { parseJsonExact } from './json.ts';
import { compilePolicySet } from './policy-set.ts';
import { validatePolicies } from './validate.ts';
import type { ValidationIssue } from './validate.ts';

export interface PolicyEvalInput {
  /** Cedar policy text. */
  policies: string;
  /** cedar-wasm entity JSON text. */
  entities: string;
  /** Optional Cedar schema text: policies are validated against it (issues go to `onIssue`). */
  schema?: string;
  onIssue?: (issue: ValidationIssue) => void;
}

function badLine(line: number, message: string): MandateError {
  return new MandateError('POLICY_EVAL_INPUT', `line ${line}: ${message}`, 400, { line });
}

/** Evaluates JSONL requests; returns JSONL decisions. Throws `POLICY_EVAL_INPUT` naming the bad line. */
export function runPolicyEval(opts: PolicyEvalInput, input: string): string {
  const set = compilePolicySet(opts.policies);
  const store = createEntityStore(opts.entities);
  if (opts.schema !== undefined) {
    const issues = validatePolicies(opts.policies, opts.schema);
    if (opts.onIssue) for (const i of issues) opts.onIssue(i);
  }
  const out: string[] = [];
  const lines = input.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = (lines[i] as string).trim();
    if (text === '') continue;
    let req: unknown;
    try {
      req = parseJsonExact(text);
    } catch (e) {
      throw badLine(i + 1, `not valid JSON: ${(e as Error).message}`);
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) throw badLine(i + 1, 'expected a JSON object');
    const r = req as Record<string, unknown>;
    for (const k of ['principal', 'action', 'resource']) if (!(k in r)) throw badLine(i + 1, `missing "${k}"`);
    let d: Decision;
    try {
      d = authorize(set, store, {
        principal: r.principal as never,
        action: r.action as never,
        resource: r.resource as never,
        context: (r.context ?? {}) as Record<string, unknown>,
      });
    } catch (e) {
      if (e instanceof MandateError) throw badLine(i + 1, e.message);
      throw e;
    }
    out.push(JSON.stringify({ decision: d.decision, reasons: d.reasons, errors: d.errors }));
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
