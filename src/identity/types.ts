export type HumanStatus = 'active' | 'inactive' | 'deleted';
export type IdentityKind = 'agent' | 'workload';
export type IdentityStatus = 'active' | 'suspended' | 'decommissioned';
export type FindingKind = 'orphaned' | 'inactive' | 'handover' | 'review';

export interface Human {
  id: string;
  email: string;
  userName: string;
  displayName: string;
  department: string | null;
  managerId: string | null;
  status: HumanStatus;
  externalId: string | null;
  groups: string[];
  attributes: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  deactivatedAt: string | null;
}

export interface Group {
  id: string;
  displayName: string;
  externalId: string | null;
  members: string[];
  createdAt: string;
  updatedAt: string;
}

/** An agent, workload or service account: a non-human identity with a human who answers for it. */
export interface NonHumanIdentity {
  id: string;
  kind: IdentityKind;
  name: string;
  ownerId: string;
  sponsorId: string | null;
  purpose: string | null;
  environment: string | null;
  modelProvider: string | null;
  model: string | null;
  tags: string[];
  status: IdentityStatus;
  statusReason: string | null;
  reviewReason: string | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
}

export interface Finding {
  id: string;
  kind: FindingKind;
  subjectId: string;
  status: 'open' | 'resolved';
  details: Record<string, unknown>;
  createdAt: string;
  resolvedAt: string | null;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}
