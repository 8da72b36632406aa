/** Governance: grants, just-in-time access, separation of duties, certification campaigns. */
export { Governance, GOVERNANCE_JOBS, type GovernanceOptions } from './governance.ts';
export { GrantService, GRANTS_CHANGED, type GrantInput } from './grants.ts';
export { SodService, SOD_CHANGED, type SodRuleInput } from './sod.ts';
export { AccessRequestService, DEFAULT_STAGES, type AccessRequestInput, type ApprovalRuleInput } from './requests.ts';
export { CertificationService, type CertificationInput, type CertificationReport } from './certifications.ts';
export { cedarProjection, isEntitlement, isEntitlementPattern, matchesPattern, ENTITLEMENT_RE, type CedarEntitlementProjection } from './entitlements.ts';
export { adjustableClock, type AdjustableClock } from './clock.ts';
export { signatureHeader } from './webhook.ts';
export { seedGovernanceDemo } from './demo.ts';
export type {
  Grant,
  GrantKind,
  GrantStatus,
  AccessRequest,
  AccessRequestStatus,
  ApprovalRule,
  ApprovalStage,
  ApproverSpec,
  SodRule,
  SodConflict,
  SodViolation,
  SessionToolPair,
  Certification,
  CertificationItem,
  CertificationScope,
} from './types.ts';
