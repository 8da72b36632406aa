/**
 * Schema validation through cedar-wasm (strict mode). Validation reports problems in policies; it never
 * changes a decision. Positions are line/column in the policy-set text.
 */
import { validate } from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../core/errors.ts';
import { checkCedarComplexity } from './limits.ts';
import { LineIndex, errorPosition, parsePolicies } from './parse.ts';
import type { TemplateLink } from './policy-set.ts';

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

/**
 * `links` are validated as the policies they make: a link is what names the entity of a template's slot,
 * so a typo there (`Agnet::"agt_1"`) makes a forbid that silently never matches. Their issues carry the
 * link's id and the position of its template.
 */
export function validatePolicies(text: string, schemaText: string, links: readonly TemplateLink[] = []): ValidationIssue[] {
  // Parse first so syntax errors surface as POLICY_PARSE with a position.
  const parsed = parsePolicies(text);
  checkCedarComplexity(schemaText, 'schema');
  const staticPolicies: Record<string, string> = {};
  const templates: Record<string, string> = {};
  for (const p of parsed) (p.isTemplate ? templates : staticPolicies)[p.id] = p.chunk.text;
  const answer = validate({ schema: schemaText, policies: { staticPolicies, templates, templateLinks: links.map((l) => ({ templateId: l.templateId, newId: l.newId, values: { ...l.values } })) }, validationSettings: { mode: 'strict' } });
  if (answer.type === 'failure') {
    const msg = answer.errors.map((e) => e.message).join('; ');
    throw new MandateError('POLICY_SCHEMA', `schema could not be used: ${msg}`, 400);
  }
  const lines = new LineIndex(text);
  const byId = new Map(parsed.map((p) => [p.id, p]));
  for (const l of links) {
    const template = byId.get(l.templateId);
    if (template !== undefined && !byId.has(l.newId)) byId.set(l.newId, template);
  }
  const issue = (severity: 'error' | 'warning') => (v: { policyId: string; error: DetailedError }): ValidationIssue => {
    const p = byId.get(v.policyId);
    const pos = p === undefined ? { line: 1, column: 1 } : errorPosition(lines, p.chunk, v.error);
    return { policyId: v.policyId, severity, message: messageOf(v.error), line: pos.line, column: pos.column };
  };
  return [...answer.validationErrors.map(issue('error')), ...answer.validationWarnings.map(issue('warning'))];
}
