/**
 * Policy engine: Cedar policies parsed and validated with cedar-wasm, evaluated by our own compiler
 * (JSON policy form → closures) with a scope index. Public surface of src/policy.
 */
export { compilePolicySet, CompiledPolicySet } from './policy-set.ts';
export type { CompileOptions, CompiledPolicy, PolicyInfo, TemplateLink } from './policy-set.ts';
export { authorize } from './authorize.ts';
export type { AuthorizationRequest, AuthorizeOptions, Decision, PolicyError } from './authorize.ts';
export type { AttributeRead } from './compile.ts';
export { createEntityStore, EntityStore, contextFromJson, hierarchyDepths, MAX_ANCESTOR_ENTRIES, MAX_ENTITY_HIERARCHY_DEPTH } from './entities.ts';
export type { EntityData, EntityJson, EntityLookup, EntityOverride, UpsertOptions } from './entities.ts';
export type { EntityUidJson } from './json-value.ts';
export { parseJsonExact } from './json.ts';
export { validatePolicies } from './validate.ts';
export type { ValidationIssue } from './validate.ts';
export { runPolicyEval } from './eval-cli.ts';
export type { PolicyEvalInput } from './eval-cli.ts';
export { EntityUid } from './values.ts';
