export type GrantKind = 'standing' | 'jit';
export type GrantStatus = 'active' | 'revoked' | 'expired';

export interface Grant {
  id: string;
  principalId: string;
  entitlement: string;
  kind: GrantKind;
  /** `expired` as soon as `expiresAt` has passed, whether or not the expiry job has run yet. */
  status: GrantStatus;
  requestId: string | null;
  grantedBy: string;
  reason: string | null;
  createdAt: string;
  expiresAt: string | null;
  endedAt: string | null;
  endedBy: string | null;
  endReason: string | null;
}

export type ApproverSpec =
  | { kind: 'owner' }
  | { kind: 'manager' }
  | { kind: 'human'; id: string }
  | { kind: 'group'; id: string };

export interface ApprovalStage {
  approvers: ApproverSpec[];
  /** Distinct eligible approvals this stage needs (N of M). */
  required: number;
}

export interface ApprovalRule {
  id: string;
  pattern: string;
  stages: ApprovalStage[];
  maxDurationSeconds: number;
  createdBy: string;
  createdAt: string;
}

export type AccessRequestStatus = 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';

export interface AccessDecisionRecord {
  approverId: string;
  decision: 'approve' | 'deny';
  comment: string | null;
  at: string;
}

export interface AccessRequest {
  id: string;
  principalId: string;
  entitlement: string;
  requesterId: string;
  justification: string;
  durationSeconds: number;
  /** `expired` once an approved request's grant has run out. */
  status: AccessRequestStatus;
  rulePattern: string | null;
  stages: ApprovalStage[];
  decisions: AccessDecisionRecord[];
  grantId: string | null;
  expiresAt: string | null;
  createdBy: string;
  createdAt: string;
  decidedAt: string | null;
}

export type SodEnforcement = 'grant' | 'session' | 'both';

export interface SodRule {
  id: string;
  name: string;
  description: string | null;
  entitlements: string[];
  pairs: [string, string][];
  countDelegation: boolean;
  enforce: SodEnforcement;
  createdBy: string;
  createdAt: string;
}

export interface SodConflict {
  rule: string;
  ruleId: string;
  /** The entitlement being granted (or, for findings, one of the pair). */
  entitlement: string;
  conflictsWith: string;
  /** Who holds `conflictsWith`: the principal itself or its delegation partner. */
  heldBy: string;
}

export interface SodViolation {
  rule: string;
  ruleId: string;
  principalId: string;
  /** When counted with delegation: the owner (or agent) whose holdings were combined. */
  partnerId: string | null;
  entitlements: [string, string];
  heldBy: [string, string];
}

export interface SessionToolPair {
  rule: string;
  /** `<server>/<tool>`, `*` wildcards allowed. */
  a: string;
  b: string;
}

export type CertificationScope = { all: true } | { department: string } | { tag: string } | { ownerId: string };

export interface Certification {
  id: string;
  name: string;
  scope: CertificationScope;
  reviewers: 'owners' | { humanIds: string[] };
  deadline: string;
  onNoAnswer: 'revoke' | 'keep';
  status: 'open' | 'closed';
  webhookUrl: string | null;
  remindBeforeSeconds: number[];
  remindersSent: number[];
  lastReminderError: string | null;
  createdBy: string;
  createdAt: string;
  closedAt: string | null;
}

export interface CertificationItem {
  id: string;
  campaignId: string;
  principalId: string;
  entitlement: string;
  grantIds: string[];
  reviewerIds: string[];
  status: 'pending' | 'keep' | 'revoke';
  decidedBy: string | null;
  decisionSource: 'reviewer' | 'deadline' | null;
  comment: string | null;
  delegations: { from: string; to: string; at: string }[];
  revokedGrantIds: string[];
  decidedAt: string | null;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}
