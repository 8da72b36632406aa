import { sql } from 'kysely';
import type { Store } from '../../store/index.ts';
import { toHuman } from '../rows.ts';
import type { Group, Human } from '../types.ts';
import type { Anchor } from './filter.ts';

/** Most candidates one filter lookup returns; an `eq` on an indexed attribute finds one or a few. */
const MAX_CANDIDATES = 1000;

/**
 * The read side SCIM needs and IdentityService's cursor pages do not give: offsets and totals
 * (RFC 7644 §3.4.2.4 `startIndex`/`totalResults`), case-insensitive lookups (userName, emails and group
 * displayName are `caseExact: false`, RFC 7643 §4), and display names for references. Read-only: every
 * write goes through IdentityService, which audits it.
 */
export class ScimDirectory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get #db() {
    return this.#store.db;
  }

  async human(id: string): Promise<Human | undefined> {
    const row = await this.#db.selectFrom('humans').selectAll().where('id', '=', id).where('status', '!=', 'deleted').executeTakeFirst();
    if (!row) return undefined;
    return toHuman(row, (await this.#memberships([id])).get(id)?.map((g) => g.id) ?? []);
  }

  async countHumans(): Promise<number> {
    const row = await this.#db.selectFrom('humans').select((eb) => eb.fn.countAll().as('n')).where('status', '!=', 'deleted').executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async humansPage(offset: number, limit: number): Promise<Human[]> {
    if (limit === 0) return [];
    const rows = await this.#db.selectFrom('humans').selectAll().where('status', '!=', 'deleted').orderBy('id').limit(limit).offset(offset).execute();
    return this.#withGroups(rows);
  }

  async humansBy(anchor: Anchor): Promise<Human[]> {
    let query = this.#db.selectFrom('humans').selectAll().where('status', '!=', 'deleted').orderBy('id').limit(MAX_CANDIDATES);
    switch (anchor.kind) {
      case 'id':
        query = query.where('id', '=', anchor.value);
        break;
      case 'userName': {
        // The exact value is an index hit and what IdPs send back; only when it misses, scan ignoring case.
        const exact = await query.where('user_name', '=', anchor.value).execute();
        if (exact.length > 0) return this.#withGroups(exact);
        query = query.where(sql<string>`lower(user_name)`, '=', anchor.value.toLowerCase());
        break;
      }
      case 'externalId':
        query = query.where('external_id', '=', anchor.value);
        break;
      case 'email':
        query = query.where('email', '=', anchor.value.toLowerCase());
        break;
      default:
        return [];
    }
    return this.#withGroups(await query.execute());
  }

  /** Whether another human (deleted ones included: the columns are unique) holds this userName or email. */
  async clash(field: 'user_name' | 'email', value: string, exceptId?: string): Promise<string | undefined> {
    let query = this.#db.selectFrom('humans').select('id').where(field, '=', value);
    if (exceptId) query = query.where('id', '!=', exceptId);
    return (await query.executeTakeFirst())?.id;
  }

  /** Each human's groups, with names, for the User `groups` attribute. */
  async groupsOf(humanIds: string[]): Promise<Map<string, { id: string; displayName: string }[]>> {
    return this.#memberships(humanIds);
  }

  /** Display names of humans (members, managers), deleted ones excluded. */
  async names(humanIds: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const chunk of chunks([...new Set(humanIds)])) {
      const rows = await this.#db.selectFrom('humans').select(['id', 'display_name']).where('id', 'in', chunk).where('status', '!=', 'deleted').execute();
      for (const row of rows) names.set(row.id, row.display_name);
    }
    return names;
  }

  async group(id: string): Promise<Group | undefined> {
    return (await this.groupsBy({ kind: 'id', value: id }))[0];
  }

  async countGroups(): Promise<number> {
    const row = await this.#db.selectFrom('groups').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async groupsPage(offset: number, limit: number): Promise<Group[]> {
    if (limit === 0) return [];
    const rows = await this.#db.selectFrom('groups').selectAll().orderBy('id').limit(limit).offset(offset).execute();
    return this.#withMembers(rows);
  }

  async groupsBy(anchor: Anchor): Promise<Group[]> {
    let query = this.#db.selectFrom('groups').selectAll().orderBy('id').limit(MAX_CANDIDATES);
    switch (anchor.kind) {
      case 'id':
        query = query.where('id', '=', anchor.value);
        break;
      case 'displayName': {
        const exact = await query.where('display_name', '=', anchor.value).execute();
        if (exact.length > 0) return this.#withMembers(exact);
        query = query.where(sql<string>`lower(display_name)`, '=', anchor.value.toLowerCase());
        break;
      }
      case 'externalId':
        query = query.where('external_id', '=', anchor.value);
        break;
      case 'member':
        query = query.where('id', 'in', this.#db.selectFrom('group_members').select('group_id').where('human_id', '=', anchor.value));
        break;
      default:
        return [];
    }
    return this.#withMembers(await query.execute());
  }

  async groupNameClash(displayName: string, exceptId?: string): Promise<string | undefined> {
    let query = this.#db.selectFrom('groups').select('id').where('display_name', '=', displayName);
    if (exceptId) query = query.where('id', '!=', exceptId);
    return (await query.executeTakeFirst())?.id;
  }

  async #withGroups(rows: Parameters<typeof toHuman>[0][]): Promise<Human[]> {
    const groups = await this.#memberships(rows.map((r) => r.id));
    return rows.map((row) => toHuman(row, groups.get(row.id)?.map((g) => g.id) ?? []));
  }

  async #withMembers(rows: { id: string; display_name: string; external_id: string | null; created_at: string; updated_at: string }[]): Promise<Group[]> {
    const members = new Map<string, string[]>();
    for (const chunk of chunks(rows.map((r) => r.id))) {
      const found = await this.#db.selectFrom('group_members').select(['group_id', 'human_id']).where('group_id', 'in', chunk).orderBy('human_id').execute();
      for (const m of found) {
        const list = members.get(m.group_id);
        if (list) list.push(m.human_id);
        else members.set(m.group_id, [m.human_id]);
      }
    }
    return rows.map((row) => ({ id: row.id, displayName: row.display_name, externalId: row.external_id, members: members.get(row.id) ?? [], createdAt: row.created_at, updatedAt: row.updated_at }));
  }

  async #memberships(humanIds: string[]): Promise<Map<string, { id: string; displayName: string }[]>> {
    const result = new Map<string, { id: string; displayName: string }[]>();
    for (const chunk of chunks(humanIds)) {
      const rows = await this.#db
        .selectFrom('group_members')
        .innerJoin('groups', 'groups.id', 'group_members.group_id')
        .select(['group_members.human_id', 'groups.id', 'groups.display_name'])
        .where('group_members.human_id', 'in', chunk)
        .orderBy('groups.id')
        .execute();
      for (const row of rows) {
        const list = result.get(row.human_id);
        if (list) list.push({ id: row.id, displayName: row.display_name });
        else result.set(row.human_id, [{ id: row.id, displayName: row.display_name }]);
      }
    }
    return result;
  }
}

/** Keeps `in (…)` lists under SQLite's and PostgreSQL's bound-parameter limits. */
function chunks<T>(items: T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
