export { IdentityService, IDENTITY_CHANGED, HUMAN_CHANGED, type HumanInput, type HumanPatch, type IdentityInput, type HandoverResolution, type IdentityTokenState, TOKENS_NOT_BEFORE_MARGIN_MS } from './service.ts';
export type { Human, Group, NonHumanIdentity, Finding, FindingKind, HumanStatus, IdentityKind, IdentityStatus, Page } from './types.ts';
