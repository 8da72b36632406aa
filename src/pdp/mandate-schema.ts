import { validatePolicies, type TemplateLink, type ValidationIssue } from '../policy/index.ts';

/**
 * Mandate's own Cedar schema: the vocabulary of the registry projection and the MCP gateway
 * (docs/policies.md). Policies for agents and tools validate against it by default.
 *
 * `context.args` (a tool call's arguments) and `Tool.settings` are free-form; Cedar schemas cannot
 * describe an open record (cedar-wasm 4.13 rejects `additionalAttributes` unless an experimental
 * feature is on), so they are declared as empty records and reads of them are not checked (see
 * `validateAgainstMandateSchema`).
 */
// `entitlements` is required: governance (always wired, src/server/services.ts) projects it on every
// Human, Agent and Workload, possibly empty, never absent (docs/governance.md), so policies read it
// without `has` — and since applying a policy validates against this schema, they must be allowed to.
export const MANDATE_SCHEMA = `
entity Group = { name: String };
entity Role;
entity Human in [Group, Role] = {
  email: String, userName: String, displayName: String, status: String,
  department?: String, manager?: Human, entitlements: Set<String>,
};
entity Agent, Workload in [Role] = {
  name: String, owner: Human, status: String, tags: Set<String>,
  provider?: String, model?: String, environment?: String, entitlements: Set<String>,
};
entity McpServer = { name: String, transport?: String, labels?: Set<String> };
entity Tool in [McpServer] = { server: String, name: String, labels: Set<String>, settings?: {} };
entity Resource in [McpServer] = { server: String, uri: String, labels: Set<String> };
entity Prompt in [McpServer] = { server: String, name: String, labels: Set<String> };
type Session = { id: String, labels: Set<String>, calls: Long };
type GatewayContext = {
  args: {}, user?: Human, chain: Set<String>, session: Session,
  time?: datetime, clientAddress?: ipaddr, scopes?: Set<String>,
};
action "tools/call" appliesTo { principal: [Agent, Workload, Human], resource: [Tool], context: GatewayContext };
action "resources/read" appliesTo { principal: [Agent, Workload, Human], resource: [Resource], context: GatewayContext };
action "prompts/get" appliesTo { principal: [Agent, Workload, Human], resource: [Prompt], context: GatewayContext };
`;

/**
 * Validates policies against Mandate's schema. Findings that only stem from the free-form records
 * (`context.args`, `settings`) are dropped: the schema cannot type them, so they say nothing.
 */
export function validateAgainstMandateSchema(cedar: string, links: readonly TemplateLink[] = []): ValidationIssue[] {
  const lines = cedar.split('\n');
  const readsFreeForm = (issue: ValidationIssue) => /context\.args|\.settings\b/.test(lines.slice(issue.line - 1).join('\n').split(';')[0] ?? '');
  return validatePolicies(cedar, MANDATE_SCHEMA, links).filter((issue) => {
    if (/attribute `(args|settings)(\.|`)/.test(issue.message)) return false;
    // `context.args has x` on an empty record makes Cedar call the policy impossible: it is not.
    if (/policy is impossible/.test(issue.message) && readsFreeForm(issue)) return false;
    return true;
  });
}
