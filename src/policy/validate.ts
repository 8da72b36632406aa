/**
 * Schema validation through cedar-wasm (strict mode). Validation reports problems in policies; it never
 * changes a decision. Positions are line/column in the policy-set text.
 */
import { validate } from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../core/errors.ts';
import { checkCedarComplexity } from './limits.ts';
import { LineIndex, errorPosition, parsePolicies } from './parse.ts';

export interface ValidationIssue {
  policyId: string;
  severity: 'error' | 'warning';
  message: string;
  line: number;
  column: number;
}

function messageOf(e: DetailedError): string {
  return e.help ? `${e.message} (${e.help})` : e.message;
}

export function validatePolicies(text: string, schemaText: string): ValidationIssue[] {
  // Parse first so syntax errors surface as POLICY_PARSE with a position.
  const parsed = parsePolicies(text);
  checkCedarComplexity(schemaText, 'schema');
  const staticPolicies: Record<string, string> = {};
  const templates: Record<string, string> = {};
  for (const p of parsed) (p.isTemplate ? templates : staticPolicies)[p.id] = p.chunk.text;
  const answer = validate({ schema: schemaText, policies: { staticPolicies, templates }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') {
    const msg = answer.errors.map((e) => e.message).join('; ');
    throw new MandateError('POLICY_SCHEMA', `schema could not be used: ${msg}`, 400);
  }
  const lines = new LineIndex(text);
  const byId = new Map(parsed.map((p) => [p.id, p]));
  const issue = (severity: 'error' | 'warning') => (v: { policyId: string; error: DetailedError }): ValidationIssue => {
    const p = byId.get(v.policyId);
    const pos = p === undefined ? { line: 1, column: 1 } : errorPosition(lines, p.chunk, v.error);
    return { policyId: v.policyId, severity, message: messageOf(v.error), line: pos.line, column: pos.column };
  };
  return [...answer.validationErrors.map(issue('error')), ...answer.validationWarnings.map(issue('warning'))];
}
