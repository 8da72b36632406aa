import type { Transaction } from 'kysely';
import type { AuditLog } from '../audit/index.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { toPage } from '../core/page.ts';
import type { Database, Store, Tx } from '../store/index.ts';
import { toFinding, toHuman, toIdentity } from './rows.ts';
import type { Finding, FindingKind, Group, Human, IdentityKind, IdentityStatus, NonHumanIdentity, Page } from './types.ts';

export interface HumanInput {
  email: string;
  displayName: string;
  userName?: string | undefined;
  department?: string | null | undefined;
  managerId?: string | null | undefined;
  externalId?: string | null | undefined;
  active?: boolean | undefined;
  groups?: string[] | undefined;
  attributes?: Record<string, unknown> | undefined;
}

/** Every field optional; `undefined` means "leave as is". */
export type HumanPatch = { [K in keyof HumanInput]?: HumanInput[K] | undefined };

export interface IdentityInput {
  name: string;
  ownerId: string;
  sponsorId?: string | null | undefined;
  purpose?: string | null | undefined;
  environment?: string | null | undefined;
  modelProvider?: string | null | undefined;
  model?: string | null | undefined;
  tags?: string[] | undefined;
}

export type HandoverResolution = { action: 'transfer'; newOwnerId?: string | undefined } | { action: 'decommission' };

/** Change-event topics other domains subscribe to. */
export const IDENTITY_CHANGED = 'identity.changed';
export const HUMAN_CHANGED = 'human.changed';

/**
 * How far a suspension's `tokens_not_before` is put after the suspending replica's clock. Tokens are
 * stamped by whichever replica issues them, with its own clock; without the margin a replica whose clock
 * runs ahead (or that has not yet received the suspension's event) could issue a token just before, or
 * while, the suspension commits and stamp it after the instant, and that token would come back on
 * resume. Issuers stamp new tokens no earlier than the instant they read (see the OAuth domain), so the
 * margin never refuses a token issued after a resume. Same tolerance the token verifier allows for skew.
 */
export const TOKENS_NOT_BEFORE_MARGIN_MS = 5_000;

/** What a token verifier needs to know about an identity (the identity domain's narrow query for OAuth). */
export interface IdentityTokenState {
  status: IdentityStatus;
  /** Epoch milliseconds; tokens issued before it are dead, whatever the status is now. Null: never suspended. */
  tokensNotBefore: number | null;
}

type Db = Transaction<Database> | Store['db'];

/**
 * The registry of humans and the non-human identities they own, and their lifecycle.
 * Every change commits together with its audit record.
 */
export class IdentityService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #inactivityDays: number;

  constructor(store: Store, audit: AuditLog, options: { clock?: Clock; inactivityDays: number }) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = options.clock ?? systemClock;
    this.#inactivityDays = options.inactivityDays;
  }

  #now(): string {
    return this.#clock.now().toISOString();
  }

  // ---- humans -------------------------------------------------------------------------------------

  async createHuman(input: HumanInput, actor: string): Promise<Human> {
    return this.#store.transaction(async (tx) => {
      const now = this.#now();
      const id = newId('hum');
      const email = input.email.toLowerCase();
      const userName = input.userName ?? email;
      const clash = await tx.db
        .selectFrom('humans')
        .select('id')
        .where((eb) => eb.or([eb('email', '=', email), eb('user_name', '=', userName)]))
        .executeTakeFirst();
      if (clash) throw new MandateError('HUMAN_EXISTS', `a human with email ${email} or userName ${userName} already exists`, 409, { id: clash.id });
      if (input.managerId) await this.#requireHuman(tx.db, input.managerId, 'HUMAN_MANAGER_NOT_FOUND');
      await tx.db
        .insertInto('humans')
        .values({
          id,
          email,
          user_name: userName,
          display_name: input.displayName,
          department: input.department ?? null,
          manager_id: input.managerId ?? null,
          status: input.active === false ? 'inactive' : 'active',
          external_id: input.externalId ?? null,
          attributes: JSON.stringify(input.attributes ?? {}),
          created_at: now,
          updated_at: now,
          deactivated_at: input.active === false ? now : null,
        })
        .execute();
      for (const groupId of input.groups ?? []) await this.#addMember(tx, groupId, id);
      const human = await this.#loadHuman(tx.db, id);
      await this.#audit.appendIn(tx, { actor, action: 'human.create', target: id, outcome: 'success', details: { email, department: human.department } });
      tx.publish(HUMAN_CHANGED, { id });
      return human;
    });
  }

  async getHuman(id: string): Promise<Human> {
    return this.#loadHuman(this.#store.db, id);
  }

  async listHumans(filter: { email?: string | undefined; userName?: string | undefined; externalId?: string | undefined; includeDeleted?: boolean; cursor?: string | undefined; limit: number }): Promise<Page<Human>> {
    let query = this.#store.db.selectFrom('humans').selectAll().orderBy('id').limit(filter.limit + 1);
    if (filter.email) query = query.where('email', '=', filter.email.toLowerCase());
    if (filter.userName) query = query.where('user_name', '=', filter.userName);
    if (filter.externalId) query = query.where('external_id', '=', filter.externalId);
    if (!filter.includeDeleted) query = query.where('status', '!=', 'deleted');
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    const rows = await query.execute();
    const groups = await this.#groupsOf(this.#store.db, rows.slice(0, filter.limit).map((r) => r.id));
    return toPage(rows, filter.limit, (r) => toHuman(r, groups.get(r.id) ?? []));
  }

  /**
   * Updates a human. A change of department, manager or groups is a *mover* event: it is recorded and
   * every agent the person owns is flagged for review, since access granted for the old role may no
   * longer fit. Setting `active: false` is a *leaver* event (see `offboard`).
   */
  async updateHuman(id: string, patch: HumanPatch, actor: string): Promise<Human> {
    if (patch.active === false) {
      const current = await this.getHuman(id);
      if (current.status === 'active') {
        await this.offboard(id, {}, actor);
      }
    }
    return this.#store.transaction(async (tx) => {
      const before = await this.#loadHuman(tx.db, id);
      if (before.status === 'deleted') throw notFound('human', id);
      const now = this.#now();
      const email = patch.email?.toLowerCase();
      if (patch.managerId) {
        if (patch.managerId === id) throw new MandateError('HUMAN_MANAGER_INVALID', 'a human cannot be their own manager');
        await this.#requireHuman(tx.db, patch.managerId, 'HUMAN_MANAGER_NOT_FOUND');
      }
      const reactivating = patch.active === true && before.status === 'inactive';
      await tx.db
        .updateTable('humans')
        .set({
          ...(email !== undefined && { email }),
          ...(patch.userName !== undefined && { user_name: patch.userName }),
          ...(patch.displayName !== undefined && { display_name: patch.displayName }),
          ...(patch.department !== undefined && { department: patch.department }),
          ...(patch.managerId !== undefined && { manager_id: patch.managerId }),
          ...(patch.externalId !== undefined && { external_id: patch.externalId }),
          ...(patch.attributes !== undefined && { attributes: JSON.stringify(patch.attributes) }),
          ...(reactivating && { status: 'active' as const, deactivated_at: null }),
          updated_at: now,
        })
        .where('id', '=', id)
        .execute();
      if (patch.groups !== undefined) {
        await tx.db.deleteFrom('group_members').where('human_id', '=', id).execute();
        for (const groupId of patch.groups) await this.#addMember(tx, groupId, id);
      }
      const after = await this.#loadHuman(tx.db, id);
      const moved = moverChanges(before, after);
      await this.#audit.appendIn(tx, { actor, action: reactivating ? 'human.reactivate' : 'human.update', target: id, outcome: 'success', details: { changed: Object.keys(patch), ...(moved.length > 0 && { mover: moved }) } });
      if (moved.length > 0) await this.#flagForReview(tx, id, `owner changed ${moved.map((m) => m.field).join(', ')}`, actor);
      tx.publish(HUMAN_CHANGED, { id });
      return after;
    });
  }

  /**
   * The leaver flow: the human is deactivated and, in the same transaction, every agent and workload
   * they own is suspended and a handover is opened for each, proposing `transferTo`, else the
   * person's manager, else nobody (an admin must choose, or decommission).
   */
  async offboard(id: string, options: { transferTo?: string | undefined }, actor: string): Promise<{ human: Human; suspended: string[]; handovers: Finding[] }> {
    return this.#store.transaction(async (tx) => {
      const human = await this.#loadHuman(tx.db, id);
      if (human.status === 'deleted') throw notFound('human', id);
      if (options.transferTo) {
        if (options.transferTo === id) throw new MandateError('HANDOVER_TARGET_INVALID', 'cannot hand agents over to the person leaving');
        const target = await this.#requireHuman(tx.db, options.transferTo, 'HANDOVER_TARGET_NOT_FOUND');
        if (target.status !== 'active') throw new MandateError('HANDOVER_TARGET_INACTIVE', `human ${target.id} is not active`, 409);
      }
      const now = this.#now();
      if (human.status === 'active') {
        await tx.db.updateTable('humans').set({ status: 'inactive', deactivated_at: now, updated_at: now }).where('id', '=', id).execute();
      }
      const owned = await tx.db.selectFrom('identities').selectAll().where('owner_id', '=', id).where('status', '!=', 'decommissioned').execute();
      const proposed = options.transferTo ?? (human.managerId && (await this.#isActive(tx.db, human.managerId)) ? human.managerId : null);
      const suspended: string[] = [];
      const handovers: Finding[] = [];
      for (const row of owned) {
        if (row.status === 'active') {
          await this.#setStatus(tx, row.id, 'suspended', 'owner offboarded');
          suspended.push(row.id);
        }
        handovers.push(await this.#openFinding(tx, 'handover', row.id, { previousOwnerId: id, proposedOwnerId: proposed, kind: row.kind, name: row.name }));
      }
      await this.#audit.appendIn(tx, { actor, action: 'human.offboard', target: id, outcome: 'success', details: { suspended, proposedOwnerId: proposed, handovers: handovers.map((h) => h.id) } });
      tx.publish(HUMAN_CHANGED, { id });
      return { human: await this.#loadHuman(tx.db, id), suspended, handovers };
    });
  }

  /** SCIM DELETE: the leaver flow, then the person disappears from directory views. */
  async deleteHuman(id: string, actor: string): Promise<void> {
    await this.offboard(id, {}, actor);
    await this.#store.transaction(async (tx) => {
      // The row stays (agents and the audit chain still name it) but frees its email and userName, so
      // the directory can provision the same person again later; the old values are kept in attributes.
      const row = await tx.db.selectFrom('humans').select(['email', 'user_name', 'attributes']).where('id', '=', id).executeTakeFirstOrThrow();
      const attributes = { ...(JSON.parse(row.attributes) as Record<string, unknown>), deleted: { email: row.email, userName: row.user_name } };
      await tx.db
        .updateTable('humans')
        .set({ status: 'deleted', email: `${id}@deleted.invalid`, user_name: `deleted:${id}`, attributes: JSON.stringify(attributes), updated_at: this.#now() })
        .where('id', '=', id)
        .execute();
      await tx.db.deleteFrom('group_members').where('human_id', '=', id).execute();
      await this.#audit.appendIn(tx, { actor, action: 'human.delete', target: id, outcome: 'success' });
      tx.publish(HUMAN_CHANGED, { id });
    });
  }

  // ---- groups -------------------------------------------------------------------------------------

  async createGroup(input: { displayName: string; externalId?: string | null | undefined; members?: string[] | undefined }, actor: string): Promise<Group> {
    return this.#store.transaction(async (tx) => {
      const clash = await tx.db.selectFrom('groups').select('id').where('display_name', '=', input.displayName).executeTakeFirst();
      if (clash) throw new MandateError('GROUP_EXISTS', `group ${input.displayName} already exists`, 409, { id: clash.id });
      const now = this.#now();
      const id = newId('grp');
      await tx.db.insertInto('groups').values({ id, display_name: input.displayName, external_id: input.externalId ?? null, created_at: now, updated_at: now }).execute();
      for (const member of input.members ?? []) await this.#addMember(tx, id, member);
      await this.#audit.appendIn(tx, { actor, action: 'group.create', target: id, outcome: 'success', details: { displayName: input.displayName, members: input.members ?? [] } });
      return this.#loadGroup(tx.db, id);
    });
  }

  async getGroup(id: string): Promise<Group> {
    return this.#loadGroup(this.#store.db, id);
  }

  async listGroups(filter: { displayName?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<Group>> {
    let query = this.#store.db.selectFrom('groups').select('id').orderBy('id').limit(filter.limit + 1);
    if (filter.displayName) query = query.where('display_name', '=', filter.displayName);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    const rows = await query.execute();
    const page = rows.slice(0, filter.limit);
    const items = await Promise.all(page.map((r) => this.#loadGroup(this.#store.db, r.id)));
    return { items, next: rows.length > filter.limit ? page[page.length - 1]!.id : null };
  }

  /** Replaces a group's name and/or members; membership changes are mover events for the people concerned. */
  async updateGroup(id: string, patch: { displayName?: string | undefined; externalId?: string | null | undefined; members?: string[] | undefined }, actor: string): Promise<Group> {
    return this.#store.transaction(async (tx) => {
      const before = await this.#loadGroup(tx.db, id);
      await tx.db
        .updateTable('groups')
        .set({
          ...(patch.displayName !== undefined && { display_name: patch.displayName }),
          ...(patch.externalId !== undefined && { external_id: patch.externalId }),
          updated_at: this.#now(),
        })
        .where('id', '=', id)
        .execute();
      const changedMembers: string[] = [];
      if (patch.members !== undefined) {
        const next = new Set(patch.members);
        for (const member of before.members) {
          if (!next.has(member)) {
            await tx.db.deleteFrom('group_members').where('group_id', '=', id).where('human_id', '=', member).execute();
            changedMembers.push(member);
          }
        }
        for (const member of next) {
          if (!before.members.includes(member)) {
            await this.#addMember(tx, id, member);
            changedMembers.push(member);
          }
        }
      }
      await this.#audit.appendIn(tx, { actor, action: 'group.update', target: id, outcome: 'success', details: { changedMembers } });
      for (const member of changedMembers) {
        await this.#flagForReview(tx, member, `group membership changed (${before.displayName})`, actor);
        tx.publish(HUMAN_CHANGED, { id: member });
      }
      return this.#loadGroup(tx.db, id);
    });
  }

  async deleteGroup(id: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const group = await this.#loadGroup(tx.db, id);
      await tx.db.deleteFrom('group_members').where('group_id', '=', id).execute();
      await tx.db.deleteFrom('groups').where('id', '=', id).execute();
      await this.#audit.appendIn(tx, { actor, action: 'group.delete', target: id, outcome: 'success', details: { displayName: group.displayName } });
      for (const member of group.members) tx.publish(HUMAN_CHANGED, { id: member });
    });
  }

  // ---- agents and workloads ---------------------------------------------------------------------------

  async createIdentity(kind: IdentityKind, input: IdentityInput, actor: string): Promise<NonHumanIdentity> {
    return this.#store.transaction(async (tx) => {
      // An identity without an active human who answers for it is exactly the orphan we exist to prevent.
      const owner = await tx.db.selectFrom('humans').select(['id', 'status']).where('id', '=', input.ownerId).executeTakeFirst();
      if (!owner || owner.status === 'deleted') throw new MandateError('IDENTITY_OWNER_NOT_FOUND', `owner ${input.ownerId} does not exist`, 422, { ownerId: input.ownerId });
      if (owner.status !== 'active') throw new MandateError('IDENTITY_OWNER_INACTIVE', `owner ${input.ownerId} is not active`, 422, { ownerId: input.ownerId });
      if (input.sponsorId) {
        const sponsor = await tx.db.selectFrom('humans').select(['id', 'status']).where('id', '=', input.sponsorId).executeTakeFirst();
        if (!sponsor || sponsor.status !== 'active') throw new MandateError('IDENTITY_SPONSOR_INVALID', `sponsor ${input.sponsorId} is not an active human`, 422);
      }
      const now = this.#now();
      const id = newId(kind === 'agent' ? 'agt' : 'wkl');
      await tx.db
        .insertInto('identities')
        .values({
          id,
          kind,
          name: input.name,
          owner_id: input.ownerId,
          sponsor_id: input.sponsorId ?? null,
          purpose: input.purpose ?? null,
          environment: input.environment ?? null,
          model_provider: input.modelProvider ?? null,
          model: input.model ?? null,
          tags: JSON.stringify([...new Set(input.tags ?? [])]),
          status: 'active',
          status_reason: null,
          review_reason: null,
          created_at: now,
          updated_at: now,
          last_used_at: null,
          tokens_not_before: null,
        })
        .execute();
      await this.#audit.appendIn(tx, { actor, action: `${kind}.create`, target: id, outcome: 'success', details: { name: input.name, ownerId: input.ownerId } });
      tx.publish(IDENTITY_CHANGED, { id, status: 'active' });
      return toIdentity(await this.#loadIdentityRow(tx.db, id));
    });
  }

  async getIdentity(id: string, kind?: IdentityKind): Promise<NonHumanIdentity> {
    const row = await this.#loadIdentityRow(this.#store.db, id);
    if (kind && row.kind !== kind) throw notFound(kind, id);
    return toIdentity(row);
  }

  async listIdentities(filter: { kind?: IdentityKind | undefined; ownerId?: string | undefined; status?: IdentityStatus | undefined; tag?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<NonHumanIdentity>> {
    let query = this.#store.db.selectFrom('identities').selectAll().orderBy('id').limit(filter.limit + 1);
    if (filter.kind) query = query.where('kind', '=', filter.kind);
    if (filter.ownerId) query = query.where('owner_id', '=', filter.ownerId);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    const rows = await query.execute();
    let page = rows.slice(0, filter.limit).map(toIdentity);
    if (filter.tag) page = page.filter((i) => i.tags.includes(filter.tag!));
    return { items: page, next: rows.length > filter.limit ? rows[filter.limit - 1]!.id : null };
  }

  /** Suspends, resumes or decommissions. Decommissioning is final. */
  async setStatus(id: string, status: IdentityStatus, reason: string | null, actor: string): Promise<NonHumanIdentity> {
    return this.#store.transaction(async (tx) => {
      const row = await this.#loadIdentityRow(tx.db, id);
      if (row.status === 'decommissioned') throw new MandateError('IDENTITY_DECOMMISSIONED', `${row.kind} ${id} is decommissioned`, 409);
      if (status === 'active') {
        const owner = await tx.db.selectFrom('humans').select('status').where('id', '=', row.owner_id).executeTakeFirst();
        if (owner?.status !== 'active') throw new MandateError('IDENTITY_OWNER_INACTIVE', `cannot resume: owner ${row.owner_id} is not active; hand it over first`, 409);
      }
      await this.#setStatus(tx, id, status, reason);
      const verb = status === 'active' ? 'resume' : status === 'suspended' ? 'suspend' : 'decommission';
      await this.#audit.appendIn(tx, { actor, action: `${row.kind}.${verb}`, target: id, outcome: 'success', details: { from: row.status, reason } });
      return toIdentity(await this.#loadIdentityRow(tx.db, id));
    });
  }

  /**
   * Suspends, in one transaction, every identity of `ids` that is still active (the kill switch): all or
   * none, each with its audit record, its tokens-not-before and its `identity.changed` event. Returns the
   * ids it suspended.
   */
  async suspendMany(ids: readonly string[], reason: string, actor: string): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.#store.transaction(async (tx) => {
      const suspended: string[] = [];
      // In chunks: one statement's bound parameters are limited (SQLite, PostgreSQL).
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await tx.db.selectFrom('identities').select(['id', 'kind']).where('id', 'in', ids.slice(i, i + 500)).where('status', '=', 'active').orderBy('id').execute();
        for (const row of rows) {
          await this.#setStatus(tx, row.id, 'suspended', reason);
          await this.#audit.appendIn(tx, { actor, action: `${row.kind}.suspend`, target: row.id, outcome: 'success', details: { from: 'active', reason } });
          suspended.push(row.id);
        }
      }
      return suspended;
    });
  }

  /** Status and tokens-not-before of an agent or workload, for token issuers and verifiers; undefined when unknown. */
  async tokenState(id: string): Promise<IdentityTokenState | undefined> {
    const row = await this.#store.db.selectFrom('identities').select(['status', 'tokens_not_before']).where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return { status: row.status, tokensNotBefore: row.tokens_not_before === null ? null : Date.parse(row.tokens_not_before) };
  }

  /** Records use (tokens, tool calls); feeds inactivity detection. */
  async touch(id: string): Promise<void> {
    await this.#store.db.updateTable('identities').set({ last_used_at: this.#now() }).where('id', '=', id).execute();
  }

  // ---- handovers and findings ---------------------------------------------------------------------------

  /** Completes an open handover: transfer to a new active owner (still suspended: the new owner resumes it), or decommission. */
  async resolveHandover(findingId: string, resolution: HandoverResolution, actor: string): Promise<{ finding: Finding; identity: NonHumanIdentity }> {
    return this.#store.transaction(async (tx) => {
      const finding = await tx.db.selectFrom('findings').selectAll().where('id', '=', findingId).executeTakeFirst();
      if (!finding || finding.kind !== 'handover') throw notFound('handover', findingId);
      if (finding.status !== 'open') throw new MandateError('HANDOVER_CLOSED', `handover ${findingId} is already resolved`, 409);
      const details = JSON.parse(finding.details) as { proposedOwnerId?: string | null };
      const identityId = finding.subject_id;
      if (resolution.action === 'transfer') {
        const newOwnerId = resolution.newOwnerId ?? details.proposedOwnerId;
        if (!newOwnerId) throw new MandateError('HANDOVER_TARGET_REQUIRED', 'no proposed owner: name newOwnerId', 422);
        if (!(await this.#isActive(tx.db, newOwnerId))) throw new MandateError('HANDOVER_TARGET_INACTIVE', `human ${newOwnerId} is not an active human`, 422);
        await tx.db.updateTable('identities').set({ owner_id: newOwnerId, updated_at: this.#now() }).where('id', '=', identityId).execute();
        tx.publish(IDENTITY_CHANGED, { id: identityId });
      } else {
        await this.#setStatus(tx, identityId, 'decommissioned', 'handover: decommissioned');
      }
      await this.#resolveFindings(tx, identityId, ['handover', 'orphaned']);
      await this.#audit.appendIn(tx, { actor, action: 'handover.resolve', target: identityId, outcome: 'success', details: { findingId, ...resolution } });
      return { finding: toFinding((await tx.db.selectFrom('findings').selectAll().where('id', '=', findingId).executeTakeFirstOrThrow())), identity: toIdentity(await this.#loadIdentityRow(tx.db, identityId)) };
    });
  }

  async listFindings(filter: { kind?: FindingKind | undefined; status?: 'open' | 'resolved' | undefined; subjectId?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<Finding>> {
    let query = this.#store.db.selectFrom('findings').selectAll().orderBy('id').limit(filter.limit + 1);
    if (filter.kind) query = query.where('kind', '=', filter.kind);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.subjectId) query = query.where('subject_id', '=', filter.subjectId);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    return toPage(await query.execute(), filter.limit, toFinding);
  }

  /**
   * Detects orphaned identities (owner missing, inactive or deleted, and not decommissioned) and inactive
   * ones (active but unused for `inactivityDays`). Idempotent: an open finding is not opened twice, and
   * findings whose condition has cleared are resolved.
   */
  async detect(actor: string): Promise<{ opened: Finding[]; resolved: number }> {
    return this.#store.transaction(async (tx) => {
      const cutoff = new Date(this.#clock.now().getTime() - this.#inactivityDays * 86_400_000).toISOString();
      const rows = await tx.db
        .selectFrom('identities')
        .leftJoin('humans', 'humans.id', 'identities.owner_id')
        .select(['identities.id', 'identities.status', 'identities.kind', 'identities.name', 'identities.owner_id', 'identities.created_at', 'identities.last_used_at', 'humans.status as owner_status'])
        .where('identities.status', '!=', 'decommissioned')
        .execute();
      const opened: Finding[] = [];
      let resolved = 0;
      for (const row of rows) {
        const orphaned = row.owner_status !== 'active';
        const lastSeen = row.last_used_at ?? row.created_at;
        const inactive = row.status === 'active' && lastSeen < cutoff;
        const conditions: [FindingKind, boolean, Record<string, unknown>][] = [
          ['orphaned', orphaned, { ownerId: row.owner_id, ownerStatus: row.owner_status ?? 'missing', kind: row.kind, name: row.name }],
          ['inactive', inactive, { lastUsedAt: row.last_used_at, inactiveDays: this.#inactivityDays, kind: row.kind, name: row.name }],
        ];
        for (const [kind, holds, details] of conditions) {
          const open = await tx.db.selectFrom('findings').select('id').where('subject_id', '=', row.id).where('kind', '=', kind).where('status', '=', 'open').executeTakeFirst();
          if (holds && !open) opened.push(await this.#openFinding(tx, kind, row.id, details));
          if (!holds && open) resolved += await this.#resolveFindings(tx, row.id, [kind]);
        }
      }
      await this.#audit.appendIn(tx, { actor, action: 'findings.detect', outcome: 'success', details: { opened: opened.length, resolved } });
      return { opened, resolved };
    });
  }

  // ---- internals ----------------------------------------------------------------------------------

  async #setStatus(tx: Tx, id: string, status: IdentityStatus, reason: string | null): Promise<void> {
    // Suspension (the kill switch and offboarding suspend through here) and decommissioning kill every
    // token issued before them, in the same transaction: a later resume must not bring those tokens back,
    // the identity needs new ones. A resume leaves the instant as it is. It only ever moves forward
    // (strictly, so two suspensions in a row are told apart), whatever the clocks did.
    let tokensNotBefore: string | undefined;
    if (status !== 'active') {
      const current = await tx.db.selectFrom('identities').select('tokens_not_before').where('id', '=', id).executeTakeFirst();
      const previous = current?.tokens_not_before ? Date.parse(current.tokens_not_before) : 0;
      tokensNotBefore = new Date(Math.max(this.#clock.now().getTime() + TOKENS_NOT_BEFORE_MARGIN_MS, previous + 1)).toISOString();
    }
    await tx.db
      .updateTable('identities')
      .set({ status, status_reason: reason, updated_at: this.#now(), ...(tokensNotBefore !== undefined && { tokens_not_before: tokensNotBefore }) })
      .where('id', '=', id)
      .execute();
    // Every replica drops this identity's cached status and tokens-not-before (tokens, gateway sessions) on this event.
    tx.publish(IDENTITY_CHANGED, { id, status });
  }

  async #flagForReview(tx: Tx, humanId: string, reason: string, _actor: string): Promise<void> {
    const owned = await tx.db.selectFrom('identities').select(['id', 'name', 'kind']).where('owner_id', '=', humanId).where('status', '!=', 'decommissioned').execute();
    for (const row of owned) {
      await tx.db.updateTable('identities').set({ review_reason: reason, updated_at: this.#now() }).where('id', '=', row.id).execute();
      const open = await tx.db.selectFrom('findings').select('id').where('subject_id', '=', row.id).where('kind', '=', 'review').where('status', '=', 'open').executeTakeFirst();
      if (!open) await this.#openFinding(tx, 'review', row.id, { ownerId: humanId, reason, kind: row.kind, name: row.name });
    }
  }

  async #openFinding(tx: Tx, kind: FindingKind, subjectId: string, details: Record<string, unknown>): Promise<Finding> {
    const row = { id: newId('fnd'), kind, subject_id: subjectId, status: 'open' as const, details: JSON.stringify(details), created_at: this.#now(), resolved_at: null };
    await tx.db.insertInto('findings').values(row).execute();
    return toFinding(row);
  }

  async #resolveFindings(tx: Tx, subjectId: string, kinds: FindingKind[]): Promise<number> {
    const result = await tx.db.updateTable('findings').set({ status: 'resolved', resolved_at: this.#now() }).where('subject_id', '=', subjectId).where('kind', 'in', kinds).where('status', '=', 'open').executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async #addMember(tx: Tx, groupId: string, humanId: string): Promise<void> {
    const group = await tx.db.selectFrom('groups').select('id').where('id', '=', groupId).executeTakeFirst();
    if (!group) throw new MandateError('GROUP_NOT_FOUND', `group ${groupId} not found`, 422, { id: groupId });
    await this.#requireHuman(tx.db, humanId, 'HUMAN_NOT_FOUND');
    const existing = await tx.db.selectFrom('group_members').select('group_id').where('group_id', '=', groupId).where('human_id', '=', humanId).executeTakeFirst();
    if (!existing) await tx.db.insertInto('group_members').values({ group_id: groupId, human_id: humanId }).execute();
  }

  async #requireHuman(db: Db, id: string, code: 'HUMAN_MANAGER_NOT_FOUND' | 'HANDOVER_TARGET_NOT_FOUND' | 'HUMAN_NOT_FOUND'): Promise<Database['humans']> {
    const row = await db.selectFrom('humans').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || row.status === 'deleted') throw new MandateError(code, `human ${id} not found`, 422, { id });
    return row;
  }

  async #isActive(db: Db, humanId: string): Promise<boolean> {
    const row = await db.selectFrom('humans').select('status').where('id', '=', humanId).executeTakeFirst();
    return row?.status === 'active';
  }

  async #loadHuman(db: Db, id: string): Promise<Human> {
    const row = await db.selectFrom('humans').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('human', id);
    const groups = await this.#groupsOf(db, [id]);
    return toHuman(row, groups.get(id) ?? []);
  }

  async #groupsOf(db: Db, humanIds: string[]): Promise<Map<string, string[]>> {
    const result = new Map<string, string[]>();
    if (humanIds.length === 0) return result;
    const rows = await db.selectFrom('group_members').select(['human_id', 'group_id']).where('human_id', 'in', humanIds).orderBy('group_id').execute();
    for (const row of rows) result.set(row.human_id, [...(result.get(row.human_id) ?? []), row.group_id]);
    return result;
  }

  async #loadGroup(db: Db, id: string): Promise<Group> {
    const row = await db.selectFrom('groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('group', id);
    const members = await db.selectFrom('group_members').select('human_id').where('group_id', '=', id).orderBy('human_id').execute();
    return { id: row.id, displayName: row.display_name, externalId: row.external_id, members: members.map((m) => m.human_id), createdAt: row.created_at, updatedAt: row.updated_at };
  }

  async #loadIdentityRow(db: Db, id: string): Promise<Database['identities']> {
    const row = await db.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('identity', id);
    return row;
  }
}

function moverChanges(before: Human, after: Human): { field: string; from: unknown; to: unknown }[] {
  const changes: { field: string; from: unknown; to: unknown }[] = [];
  if (before.department !== after.department) changes.push({ field: 'department', from: before.department, to: after.department });
  if (before.managerId !== after.managerId) changes.push({ field: 'manager', from: before.managerId, to: after.managerId });
  if (before.groups.join() !== after.groups.join()) changes.push({ field: 'groups', from: before.groups, to: after.groups });
  return changes;
}
