import { canonicalJson } from '../../core/canonical-json.ts';
import type { Store } from '../../store/index.ts';
import type { HumanPatch, IdentityService } from '../service.ts';
import type { Group, Human } from '../types.ts';
import { DEFAULT_COUNT, LIST_RESPONSE_SCHEMA, MAX_RESULTS } from './constants.ts';
import { ScimDirectory } from './directory.ts';
import { scimError } from './errors.ts';
import { anchorOf, matches, parseFilter, type ScimResourceKind } from './filter.ts';
import { KeyedLock } from './lock.ts';
import { groupFromCoerced, groupFromScim, groupToScim, project, SCIM_ATTRIBUTES_KEY, userFromCoerced, userFromScim, userToScim, type GroupState, type UserState } from './mapping.ts';
import { applyPatch } from './patch.ts';

type Json = Record<string, unknown>;

/** Query parameters of a list request, as the client sent them (RFC 7644 §3.4.2). */
export interface ListQuery {
  filter?: string | undefined;
  startIndex?: string | undefined;
  count?: string | undefined;
  attributes?: string | undefined;
  excludedAttributes?: string | undefined;
}

/** RFC 7644 §3.4.2.5 / §3.9 projection parameters for a single resource. */
export interface Projection {
  attributes?: string | undefined;
  excludedAttributes?: string | undefined;
}

export interface ScimServiceOptions {
  store: Store;
  identity: IdentityService;
  /** Absolute base of the SCIM endpoints (`https://mandate.example.com/scim/v2`), for `meta.location` and `$ref`. */
  baseUrl: string;
  /**
   * Called before SCIM changes a group's members or deletes it; throws (a SCIM 403) when the group
   * approves access and SCIM may not manage it (see `scimManagesApproverGroups`).
   */
  guardGroup?: (group: Group, change: 'members' | 'delete', actor: string) => Promise<void>;
}

const notFound = (kind: ScimResourceKind, id: string) => scimError(null, `${kind} ${id} not found`, 404);

/**
 * SCIM 2.0 Users and Groups (RFC 7643, RFC 7644) over the identity registry. Protocol logic only (no
 * HTTP): it takes parsed JSON and query strings, returns SCIM JSON, and refuses with coded errors that
 * carry the RFC 7644 §3.12 `scimType`. Every write goes through IdentityService, so joiner, mover and
 * leaver follow the same rules and land in the same audit chain as the admin API.
 */
export class ScimService {
  readonly #identity: IdentityService;
  readonly #directory: ScimDirectory;
  readonly #baseUrl: string;
  readonly #lock = new KeyedLock();
  readonly #guardGroup: NonNullable<ScimServiceOptions['guardGroup']>;

  constructor(options: ScimServiceOptions) {
    this.#identity = options.identity;
    this.#guardGroup = options.guardGroup ?? (async () => undefined);
    this.#directory = new ScimDirectory(options.store);
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  // ---- Users --------------------------------------------------------------------------------------

  /** Joiner (RFC 7644 §3.3). */
  async createUser(body: unknown, actor: string): Promise<Json> {
    const state = userFromScim(body);
    await this.#checkUserUnique(state);
    if (state.managerId) await this.#requireManager(state.managerId);
    const human = await this.#identity.createHuman(
      {
        email: state.email,
        displayName: state.displayName,
        userName: state.userName,
        department: state.department,
        managerId: state.managerId,
        externalId: state.externalId,
        active: state.active,
        attributes: { [SCIM_ATTRIBUTES_KEY]: state.extra },
      },
      actor,
    );
    return this.#renderUser(human);
  }

  async getUser(id: string, projection: Projection = {}): Promise<Json> {
    const human = await this.#directory.human(id);
    if (!human) throw notFound('User', id);
    return projectWith(await this.#renderUser(human), projection);
  }

  /** RFC 7644 §3.4.2: filtered, paged list as a ListResponse. */
  async listUsers(query: ListQuery): Promise<Json> {
    const { startIndex, count } = paging(query);
    if (query.filter !== undefined) {
      const plan = parseFilter('User', query.filter);
      const candidates = new Map<string, Human>();
      for (const branch of plan) for (const human of await this.#directory.humansBy(anchorOf('User', branch)!)) candidates.set(human.id, human);
      const rendered = await this.#renderUsers([...candidates.values()].sort((a, b) => (a.id < b.id ? -1 : 1)));
      const matching = rendered.filter((resource) => matches('User', plan, resource));
      return listResponse(matching.length, startIndex, matching.slice(startIndex - 1, startIndex - 1 + count), query);
    }
    const total = await this.#directory.countHumans();
    const page = await this.#directory.humansPage(startIndex - 1, count);
    return listResponse(total, startIndex, await this.#renderUsers(page), query);
  }

  /** RFC 7644 §3.5.1: replace every attribute the client manages. */
  async replaceUser(id: string, body: unknown, actor: string, ifMatch?: string): Promise<Json> {
    return this.#lock.run(`user:${id}`, async () => {
      const human = await this.#currentUser(id, ifMatch);
      return this.#applyUser(human, userFromScim(body, await this.#renderUser(human)), actor);
    });
  }

  /** RFC 7644 §3.5.2: add/remove/replace operations; `active: false` however sent is the leaver flow. */
  async patchUser(id: string, body: unknown, actor: string, ifMatch?: string): Promise<Json> {
    return this.#lock.run(`user:${id}`, async () => {
      const human = await this.#currentUser(id, ifMatch);
      const current = await this.#renderUser(human);
      const patched = await applyPatch('User', current, body);
      if (patched === current) return current;
      return this.#applyUser(human, userFromCoerced(patched, current), actor);
    });
  }

  /** RFC 7644 §3.6: the leaver flow, then the User is gone (404 from then on). */
  async deleteUser(id: string, actor: string, ifMatch?: string): Promise<void> {
    await this.#lock.run(`user:${id}`, async () => {
      await this.#currentUser(id, ifMatch);
      await this.#identity.deleteHuman(id, actor);
    });
  }

  // ---- Groups -------------------------------------------------------------------------------------

  async createGroup(body: unknown, actor: string): Promise<Json> {
    const state = groupFromScim(body);
    if (await this.#directory.groupNameClash(state.displayName)) throw scimError('uniqueness', `a group named ${state.displayName} already exists`, 409);
    const members = state.members ?? [];
    await this.#requireMembers(members);
    const group = await this.#identity.createGroup({ displayName: state.displayName, externalId: state.externalId, members }, actor);
    return this.#renderGroup(group);
  }

  async getGroup(id: string, projection: Projection = {}): Promise<Json> {
    const group = await this.#directory.group(id);
    if (!group) throw notFound('Group', id);
    return projectWith(await this.#renderGroup(group), projection);
  }

  async listGroups(query: ListQuery): Promise<Json> {
    const { startIndex, count } = paging(query);
    if (query.filter !== undefined) {
      const plan = parseFilter('Group', query.filter);
      const candidates = new Map<string, Group>();
      for (const branch of plan) for (const group of await this.#directory.groupsBy(anchorOf('Group', branch)!)) candidates.set(group.id, group);
      const sorted = [...candidates.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
      const rendered = await Promise.all(sorted.map((group) => this.#renderGroup(group)));
      const matching = rendered.filter((resource) => matches('Group', plan, resource));
      return listResponse(matching.length, startIndex, matching.slice(startIndex - 1, startIndex - 1 + count), query);
    }
    const total = await this.#directory.countGroups();
    const page = await this.#directory.groupsPage(startIndex - 1, count);
    return listResponse(total, startIndex, await Promise.all(page.map((group) => this.#renderGroup(group))), query);
  }

  async replaceGroup(id: string, body: unknown, actor: string, ifMatch?: string): Promise<Json> {
    return this.#lock.run(`group:${id}`, async () => {
      const group = await this.#currentGroup(id, ifMatch);
      return this.#applyGroup(group, groupFromScim(body, await this.#renderGroup(group)), actor);
    });
  }

  /** Entra and Okta add and remove members with PATCH (`members` add; `members[value eq "…"]` or a value list for remove). */
  async patchGroup(id: string, body: unknown, actor: string, ifMatch?: string): Promise<Json> {
    return this.#lock.run(`group:${id}`, async () => {
      const group = await this.#currentGroup(id, ifMatch);
      const current = await this.#renderGroup(group);
      const patched = await applyPatch('Group', current, body);
      if (patched === current) return current;
      return this.#applyGroup(group, groupFromCoerced(patched, true, current), actor);
    });
  }

  async deleteGroup(id: string, actor: string, ifMatch?: string): Promise<void> {
    await this.#lock.run(`group:${id}`, async () => {
      const group = await this.#currentGroup(id, ifMatch);
      await this.#guardGroup(group, 'delete', actor);
      await this.#identity.deleteGroup(id, actor);
    });
  }

  // ---- internals ----------------------------------------------------------------------------------

  async #currentUser(id: string, ifMatch: string | undefined): Promise<Human> {
    const human = await this.#directory.human(id);
    if (!human) throw notFound('User', id);
    if (ifMatch !== undefined) checkVersion(await this.#renderUser(human), ifMatch);
    return human;
  }

  async #currentGroup(id: string, ifMatch: string | undefined): Promise<Group> {
    const group = await this.#directory.group(id);
    if (!group) throw notFound('Group', id);
    if (ifMatch !== undefined) checkVersion(await this.#renderGroup(group), ifMatch);
    return group;
  }

  /**
   * Moves a human to the state a SCIM body describes. Attribute changes commit first (a department or
   * manager change is a mover event: IdentityService flags the person's agents for review); a
   * deactivation then runs the leaver flow (agents suspended, handovers opened) in its own transaction.
   * Conflicts are checked before anything is written, so a refused request writes nothing.
   */
  async #applyUser(human: Human, state: UserState, actor: string): Promise<Json> {
    const patch: HumanPatch = {};
    if (state.userName !== human.userName) patch.userName = state.userName;
    if (state.email !== human.email) patch.email = state.email;
    if (state.displayName !== human.displayName) patch.displayName = state.displayName;
    if (state.externalId !== human.externalId) patch.externalId = state.externalId;
    if (state.department !== human.department) patch.department = state.department;
    if (state.managerId !== human.managerId) patch.managerId = state.managerId;
    const storedExtra = human.attributes[SCIM_ATTRIBUTES_KEY] ?? {};
    if (canonicalJson(storedExtra) !== canonicalJson(state.extra)) patch.attributes = { ...human.attributes, [SCIM_ATTRIBUTES_KEY]: state.extra };
    const wasActive = human.status === 'active';
    const reactivate = state.active === true && !wasActive;
    const deactivate = state.active === false && wasActive;

    await this.#checkUserUnique(state, human.id);
    if (reactivate) {
      // Coming back makes the person an approver again in every group that approves access and still
      // lists them: through SCIM that is a change to those groups' members, guarded as one (an admin's
      // offboarding must not be undone by the identity provider behind Mandate's back).
      for (const groupId of human.groups) {
        const group = await this.#directory.group(groupId);
        if (group) await this.#guardGroup(group, 'members', actor);
      }
    }
    if (patch.managerId) {
      if (patch.managerId === human.id) throw scimError('invalidValue', 'a User cannot be their own manager');
      await this.#requireManager(patch.managerId);
    }
    if (Object.keys(patch).length > 0 || reactivate) {
      await this.#identity.updateHuman(human.id, { ...patch, ...(reactivate && { active: true }) }, actor);
    }
    if (deactivate) await this.#identity.offboard(human.id, {}, actor);
    const after = await this.#directory.human(human.id);
    if (!after) throw notFound('User', human.id);
    return this.#renderUser(after);
  }

  async #applyGroup(group: Group, state: GroupState, actor: string): Promise<Json> {
    const patch: { displayName?: string; externalId?: string | null; members?: string[] } = {};
    if (state.displayName !== group.displayName) {
      if (await this.#directory.groupNameClash(state.displayName, group.id)) throw scimError('uniqueness', `a group named ${state.displayName} already exists`, 409);
      patch.displayName = state.displayName;
    }
    if (state.externalId !== group.externalId) patch.externalId = state.externalId;
    if (state.members !== undefined) {
      const before = new Set(group.members);
      const after = new Set(state.members);
      const added = state.members.filter((m) => !before.has(m));
      const removed = group.members.filter((m) => !after.has(m));
      if (added.length > 0 || removed.length > 0) {
        await this.#guardGroup(group, 'members', actor);
        await this.#requireMembers(added);
        // Apply the change as a delta to the freshest membership, so a concurrent writer's members survive.
        const fresh = (await this.#directory.group(group.id))?.members ?? group.members;
        const gone = new Set(removed);
        patch.members = [...new Set([...fresh.filter((m) => !gone.has(m)), ...added])];
      }
    }
    if (Object.keys(patch).length === 0) return this.#renderGroup(group);
    const updated = await this.#identity.updateGroup(group.id, patch, actor);
    return this.#renderGroup(updated);
  }

  async #checkUserUnique(state: UserState, exceptId?: string): Promise<void> {
    if (await this.#directory.clash('user_name', state.userName, exceptId)) throw scimError('uniqueness', `userName ${state.userName} is already taken`, 409);
    if (await this.#directory.clash('email', state.email, exceptId)) throw scimError('uniqueness', `email ${state.email} is already taken`, 409);
  }

  async #requireManager(id: string): Promise<void> {
    if (!(await this.#directory.human(id))) throw scimError('invalidValue', `manager ${id} is not a known User`);
  }

  async #requireMembers(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const known = await this.#directory.names(ids);
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) throw scimError('invalidValue', `members must be existing Users; unknown: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
  }

  async #renderUser(human: Human): Promise<Json> {
    return (await this.#renderUsers([human]))[0]!;
  }

  async #renderUsers(humans: Human[]): Promise<Json[]> {
    const groups = await this.#directory.groupsOf(humans.map((h) => h.id));
    const managerNames = await this.#directory.names(humans.flatMap((h) => (h.managerId ? [h.managerId] : [])));
    return humans.map((human) =>
      userToScim(human, {
        baseUrl: this.#baseUrl,
        groups: groups.get(human.id) ?? [],
        manager: human.managerId && managerNames.has(human.managerId) ? { id: human.managerId, displayName: managerNames.get(human.managerId)! } : undefined,
      }),
    );
  }

  async #renderGroup(group: Group): Promise<Json> {
    return groupToScim(group, { baseUrl: this.#baseUrl, names: await this.#directory.names(group.members) });
  }
}

/** RFC 7644 §3.4.2.4: 1-based `startIndex` (below 1 means 1) and `count` (negative means 0), capped at MAX_RESULTS. */
function paging(query: ListQuery): { startIndex: number; count: number } {
  const integer = (raw: string | undefined, name: string, fallback: number): number => {
    if (raw === undefined || raw.trim() === '') return fallback;
    if (!/^[+-]?\d{1,15}$/.test(raw.trim())) throw scimError('invalidValue', `${name} must be an integer`);
    return Number(raw.trim());
  };
  const startIndex = Math.max(1, integer(query.startIndex, 'startIndex', 1));
  const count = Math.min(MAX_RESULTS, Math.max(0, integer(query.count, 'count', DEFAULT_COUNT)));
  return { startIndex, count };
}

function projectWith(resource: Json, projection: Projection): Json {
  const list = (raw: string | undefined) => (raw === undefined ? undefined : raw.split(','));
  return project(resource, list(projection.attributes), list(projection.excludedAttributes));
}

function listResponse(total: number, startIndex: number, resources: Json[], projection: Projection): Json {
  return {
    schemas: [LIST_RESPONSE_SCHEMA],
    totalResults: total,
    startIndex,
    itemsPerPage: resources.length,
    Resources: resources.map((resource) => projectWith(resource, projection)),
  };
}

/** RFC 7644 §3.14 / RFC 7232 §3.1: If-Match with `*` or a list of entity tags (weak comparison). */
function checkVersion(resource: Json, ifMatch: string): void {
  const current = (resource.meta as { version: string }).version;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const tags = ifMatch.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (tags.includes('*') || tags.some((tag) => opaque(tag) === opaque(current))) return;
  throw scimError(null, `the ${String((resource.meta as { resourceType: string }).resourceType)} has changed (version ${current})`, 412);
}
