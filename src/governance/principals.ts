import type { Transaction } from 'kysely';
import { MandateError } from '../core/errors.ts';
import type { Database, Store } from '../store/index.ts';

type Db = Transaction<Database> | Store['db'];

/** A principal that can hold entitlements: a human, or a non-human identity with its owner. */
export interface Principal {
  id: string;
  kind: 'human' | 'agent' | 'workload';
  status: string;
  /** For agents and workloads: the human who answers for them. */
  ownerId: string | null;
  /** For humans: their manager. */
  managerId: string | null;
  department: string | null;
  tags: string[];
}

export async function findPrincipal(db: Db, id: string): Promise<Principal | undefined> {
  const human = await db.selectFrom('humans').select(['id', 'status', 'manager_id', 'department']).where('id', '=', id).executeTakeFirst();
  if (human) {
    if (human.status === 'deleted') return undefined;
    return { id, kind: 'human', status: human.status, ownerId: null, managerId: human.manager_id, department: human.department, tags: [] };
  }
  const nhi = await db.selectFrom('identities').select(['id', 'kind', 'status', 'owner_id', 'tags']).where('id', '=', id).executeTakeFirst();
  if (!nhi) return undefined;
  return { id, kind: nhi.kind, status: nhi.status, ownerId: nhi.owner_id, managerId: null, department: null, tags: JSON.parse(nhi.tags) as string[] };
}

/** The principal, or 422 PRINCIPAL_NOT_FOUND; decommissioned identities hold nothing (409). */
export async function requireGrantablePrincipal(db: Db, id: string): Promise<Principal> {
  const principal = await findPrincipal(db, id);
  if (!principal) throw new MandateError('PRINCIPAL_NOT_FOUND', `no human, agent or workload ${id}`, 422, { principalId: id });
  if (principal.status === 'decommissioned') throw new MandateError('PRINCIPAL_DECOMMISSIONED', `${principal.kind} ${id} is decommissioned`, 409, { principalId: id });
  return principal;
}

export async function isActiveHuman(db: Db, id: string): Promise<boolean> {
  const row = await db.selectFrom('humans').select('status').where('id', '=', id).executeTakeFirst();
  return row?.status === 'active';
}

/** Active humans among `ids`. */
export async function activeHumans(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await db.selectFrom('humans').select('id').where('id', 'in', [...new Set(ids)]).where('status', '=', 'active').execute();
  return new Set(rows.map((r) => r.id));
}

export async function groupMembers(db: Db, groupId: string): Promise<string[]> {
  const rows = await db.selectFrom('group_members').select('human_id').where('group_id', '=', groupId).execute();
  return rows.map((r) => r.human_id);
}

/** The human accountable for a principal: an agent's or workload's owner, a human's manager. */
export function accountableHuman(principal: Principal): string | null {
  return principal.kind === 'human' ? principal.managerId : principal.ownerId;
}
