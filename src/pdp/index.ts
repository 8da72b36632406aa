export { PdpService, decisionRecord, POLICY_ACTIVATED, ENTITIES_IMPORTED, type PolicyMode, type PolicyVersion, type EntitySource, type DecideOptions, type DecisionResult, type DecisionLogEntry } from './service.ts';
export { projectHumans, projectGroups, projectIdentities, type PrincipalDecorator } from './projection.ts';
export { previewPolicyImpact, type PreviewReport, type PreviewWindow, type ChangedDecision } from './preview.ts';
export { MANDATE_SCHEMA, validateAgainstMandateSchema } from './mandate-schema.ts';
