import type { Database } from '../store/index.ts';
import type { Finding, Human, NonHumanIdentity } from './types.ts';

export function toHuman(row: Database['humans'], groups: string[]): Human {
  return {
    id: row.id,
    email: row.email,
    userName: row.user_name,
    displayName: row.display_name,
    department: row.department,
    managerId: row.manager_id,
    status: row.status,
    externalId: row.external_id,
    groups,
    attributes: JSON.parse(row.attributes) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deactivatedAt: row.deactivated_at,
  };
}

export function toIdentity(row: Database['identities']): NonHumanIdentity {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    ownerId: row.owner_id,
    sponsorId: row.sponsor_id,
    purpose: row.purpose,
    environment: row.environment,
    modelProvider: row.model_provider,
    model: row.model,
    tags: JSON.parse(row.tags) as string[],
    status: row.status,
    statusReason: row.status_reason,
    reviewReason: row.review_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastUsedAt: row.last_used_at,
  };
}

export function toFinding(row: Database['findings']): Finding {
  return {
    id: row.id,
    kind: row.kind,
    subjectId: row.subject_id,
    status: row.status,
    details: JSON.parse(row.details) as Record<string, unknown>,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
  };
}
