import { describe, expect, it } from 'vitest';
import { POLICY_TEMPLATES } from '../gateway/templates.ts';
import { validateAgainstMandateSchema } from './mandate-schema.ts';

describe("Mandate's Cedar schema", () => {
  it('accepts every policy template the gateway ships', () => {
    for (const template of POLICY_TEMPLATES) {
      const errors = validateAgainstMandateSchema(template.cedar).filter((i) => i.severity === 'error');
      expect({ template: template.id, errors }).toEqual({ template: template.id, errors: [] });
    }
  });

  it('catches misspelt attributes, unsafe optional reads and wrong entity types, with positions', () => {
    const issues = validateAgainstMandateSchema(
      [
        'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.ownr == "x" };',
        'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.owner.department == "eng" };',
        'permit (principal is Agent, action == Action::"tools/call", resource is Prompt);',
      ].join('\n'),
    );
    expect(issues.map((i) => [i.policyId, i.line])).toEqual(expect.arrayContaining([['policy0', 1], ['policy1', 2], ['policy2', 3]]));
    expect(issues.find((i) => i.policyId === 'policy0')!.message).toContain('ownr');
    expect(issues.find((i) => i.policyId === 'policy1')!.message).toContain('department');
  });

  it('leaves the free-form tool arguments unchecked', () => {
    const issues = validateAgainstMandateSchema('permit (principal is Agent, action == Action::"tools/call", resource) when { context.args has path && context.args.path like "/srv/*" };');
    expect(issues).toEqual([]);
  });
});
