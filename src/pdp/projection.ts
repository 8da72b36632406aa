import type { EntityJson } from '../policy/index.ts';
import type { Store } from '../store/index.ts';

/**
 * Projects the identity registry into Cedar entities (the vocabulary in docs/policies.md):
 *
 *   Human::"<id>"    {email, userName, displayName, status, department?, manager?: Human}, parents Group::"<id>"
 *   Group::"<id>"    {name}
 *   Agent::"<id>"    {name, owner: Human, status, tags: Set<String>, provider?, model?, environment?}
 *   Workload::"<id>" same as Agent
 *
 * Cedar has no null: absent values are omitted, so policies test them with `has`.
 * Decorators let other domains add to a principal (governance adds entitlements and Role parents).
 */
export type PrincipalDecorator = (entity: EntityJson) => EntityJson;

const ref = (type: string, id: string) => ({ __entity: { type, id } });

function withoutNulls(attrs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== null && v !== undefined));
}

export async function projectHumans(store: Store, ids?: string[]): Promise<EntityJson[]> {
  let query = store.db.selectFrom('humans').selectAll();
  if (ids) query = query.where('id', 'in', ids.length > 0 ? ids : ['']);
  const rows = await query.execute();
  if (rows.length === 0) return [];
  const memberships = await store.db.selectFrom('group_members').select(['human_id', 'group_id']).where('human_id', 'in', rows.map((r) => r.id)).execute();
  const groupsOf = new Map<string, string[]>();
  for (const m of memberships) groupsOf.set(m.human_id, [...(groupsOf.get(m.human_id) ?? []), m.group_id]);
  return rows.map((row) => ({
    uid: { type: 'Human', id: row.id },
    attrs: withoutNulls({
      email: row.email,
      userName: row.user_name,
      displayName: row.display_name,
      status: row.status,
      department: row.department,
      manager: row.manager_id ? ref('Human', row.manager_id) : null,
    }),
    parents: (groupsOf.get(row.id) ?? []).map((id) => ({ type: 'Group', id })),
  }));
}

export async function projectGroups(store: Store): Promise<EntityJson[]> {
  const rows = await store.db.selectFrom('groups').select(['id', 'display_name']).execute();
  return rows.map((row) => ({ uid: { type: 'Group', id: row.id }, attrs: { name: row.display_name }, parents: [] }));
}

export async function projectIdentities(store: Store, ids?: string[]): Promise<EntityJson[]> {
  let query = store.db.selectFrom('identities').selectAll();
  if (ids) query = query.where('id', 'in', ids.length > 0 ? ids : ['']);
  const rows = await query.execute();
  return rows.map((row) => ({
    uid: { type: row.kind === 'agent' ? 'Agent' : 'Workload', id: row.id },
    attrs: withoutNulls({
      name: row.name,
      owner: ref('Human', row.owner_id),
      status: row.status,
      tags: JSON.parse(row.tags) as string[],
      provider: row.model_provider,
      model: row.model,
      environment: row.environment,
    }),
    parents: [],
  }));
}
