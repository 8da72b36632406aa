import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../core/clock.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database, Store, Tx } from '../store/index.ts';
import { assertEntitlement, isEntitlementPattern, matchesPattern, specificity } from './entitlements.ts';
import { type GrantService } from './grants.ts';
import { activeHumans, findPrincipal, groupMembers, requireGrantablePrincipal, type Principal } from './principals.ts';
import type { SodService } from './sod.ts';
import type { AccessDecisionRecord, AccessRequest, ApprovalRule, ApprovalStage, ApproverSpec, Page } from './types.ts';

export interface ApprovalRuleInput {
  pattern: string;
  stages: ApprovalStage[];
  maxDurationSeconds?: number | undefined;
}

export interface AccessRequestInput {
  principalId: string;
  entitlement: string;
  durationSeconds: number;
  justification: string;
  /** Who asks: the principal itself (default) or a human acting for it (e.g. an agent's owner). */
  requesterId?: string | undefined;
}

export interface RequestOptions {
  /** Ceiling on any just-in-time duration, whatever a rule says. */
  maxJitSeconds: number;
  /** Shortest duration accepted. */
  minJitSeconds?: number;
}

/** When no rule matches: the human who answers for the principal approves (an agent's owner, a human's manager). */
export const DEFAULT_STAGES: ApprovalStage[] = [{ approvers: [{ kind: 'owner' }], required: 1 }];

function toRule(row: Database['approval_rules']): ApprovalRule {
  return { id: row.id, pattern: row.pattern, stages: JSON.parse(row.stages) as ApprovalStage[], maxDurationSeconds: row.max_duration_seconds, createdBy: row.created_by, createdAt: row.created_at };
}

/**
 * Just-in-time access: a principal (or a human for it) asks for an entitlement for a while, with a
 * justification; eligible humans approve under the rule that best matches the entitlement; the final
 * approval creates a grant that expires by itself. Every step is in the audit chain.
 */
export class AccessRequestService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #grants: GrantService;
  readonly #sod: SodService;
  readonly #maxJit: number;
  readonly #minJit: number;

  constructor(store: Store, audit: AuditLog, clock: Clock, grants: GrantService, sod: SodService, options: RequestOptions) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = clock;
    this.#grants = grants;
    this.#sod = sod;
    this.#maxJit = options.maxJitSeconds;
    this.#minJit = options.minJitSeconds ?? 60;
  }

  get maxJitSeconds(): number {
    return this.#maxJit;
  }

  // ---- approval rules -----------------------------------------------------------------------------

  async createRule(input: ApprovalRuleInput, actor: string): Promise<ApprovalRule> {
    if (!isEntitlementPattern(input.pattern)) throw new MandateError('ENTITLEMENT_INVALID', `"${input.pattern.slice(0, 80)}" is not an entitlement or pattern`, 400);
    const max = input.maxDurationSeconds ?? this.#maxJit;
    if (max > this.#maxJit) throw new MandateError('ACCESS_DURATION_TOO_LONG', `maxDurationSeconds may not exceed the configured ceiling of ${this.#maxJit} seconds`, 422, { maxJitSeconds: this.#maxJit });
    if (max < this.#minJit) throw new MandateError('ACCESS_DURATION_TOO_SHORT', `maxDurationSeconds must be at least ${this.#minJit}`, 422);
    for (const stage of input.stages) {
      if (stage.required > stage.approvers.length && !stage.approvers.some((a) => a.kind === 'group')) {
        throw new MandateError('APPROVAL_RULE_INVALID', `a stage needs ${stage.required} approvals but names only ${stage.approvers.length} approvers`, 400);
      }
    }
    return this.#store.transaction(async (tx) => {
      for (const spec of input.stages.flatMap((s) => s.approvers)) {
        if (spec.kind === 'human') {
          const human = await tx.db.selectFrom('humans').select('status').where('id', '=', spec.id).executeTakeFirst();
          if (!human || human.status === 'deleted') throw new MandateError('APPROVER_NOT_FOUND', `human ${spec.id} not found`, 422, { id: spec.id });
        }
        if (spec.kind === 'group') {
          const group = await tx.db.selectFrom('groups').select('id').where('id', '=', spec.id).executeTakeFirst();
          if (!group) throw new MandateError('APPROVER_NOT_FOUND', `group ${spec.id} not found`, 422, { id: spec.id });
        }
      }
      const clash = await tx.db.selectFrom('approval_rules').select('id').where('pattern', '=', input.pattern).executeTakeFirst();
      if (clash) throw new MandateError('APPROVAL_RULE_EXISTS', `a rule for ${input.pattern} exists`, 409, { id: clash.id });
      const row: Database['approval_rules'] = { id: newId('apr'), pattern: input.pattern, stages: JSON.stringify(input.stages), max_duration_seconds: max, created_by: actor, created_at: this.#clock.now().toISOString() };
      await tx.db.insertInto('approval_rules').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'access.rule.create', target: row.id, outcome: 'success', details: { pattern: row.pattern, stages: input.stages, maxDurationSeconds: max } });
      return toRule(row);
    });
  }

  async listRules(): Promise<ApprovalRule[]> {
    const rows = await this.#store.db.selectFrom('approval_rules').selectAll().orderBy('pattern').execute();
    return rows.map(toRule);
  }

  async deleteRule(id: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const row = await tx.db.selectFrom('approval_rules').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('approval_rule', id);
      await tx.db.deleteFrom('approval_rules').where('id', '=', id).execute();
      await this.#audit.appendIn(tx, { actor, action: 'access.rule.delete', target: id, outcome: 'success', details: { pattern: row.pattern } });
    });
  }

  /** The rule that applies to an entitlement: the most specific matching pattern, else the default. */
  async ruleFor(db: Tx['db'] | Store['db'], entitlement: string): Promise<{ pattern: string | null; stages: ApprovalStage[]; maxDurationSeconds: number }> {
    const rows = (await db.selectFrom('approval_rules').selectAll().execute()).map(toRule);
    const best = rows.filter((r) => matchesPattern(r.pattern, entitlement)).sort((a, b) => specificity(b.pattern) - specificity(a.pattern) || a.pattern.localeCompare(b.pattern))[0];
    return best ? { pattern: best.pattern, stages: best.stages, maxDurationSeconds: best.maxDurationSeconds } : { pattern: null, stages: DEFAULT_STAGES, maxDurationSeconds: this.#maxJit };
  }

  // ---- requests -----------------------------------------------------------------------------------

  async create(input: AccessRequestInput, actor: string): Promise<AccessRequest> {
    assertEntitlement(input.entitlement);
    return this.#refusalsAudited(actor, 'access.request', input.principalId, { entitlement: input.entitlement }, () =>
      this.#store.transaction(async (tx) => {
        const principal = await requireGrantablePrincipal(tx.db, input.principalId);
        if (principal.status !== 'active') throw new MandateError('PRINCIPAL_NOT_ACTIVE', `${principal.kind} ${principal.id} is ${principal.status}`, 409);
        const requesterId = input.requesterId ?? input.principalId;
        if (requesterId !== input.principalId) {
          const requester = await findPrincipal(tx.db, requesterId);
          if (!requester || requester.kind !== 'human' || requester.status !== 'active') throw new MandateError('REQUESTER_INVALID', `requester ${requesterId} must be the principal itself or an active human`, 422);
        }
        const rule = await this.ruleFor(tx.db, input.entitlement);
        const max = Math.min(rule.maxDurationSeconds, this.#maxJit);
        if (input.durationSeconds > max) throw new MandateError('ACCESS_DURATION_TOO_LONG', `durationSeconds may not exceed ${max} for ${input.entitlement}`, 422, { maxDurationSeconds: max });
        if (input.durationSeconds < this.#minJit) throw new MandateError('ACCESS_DURATION_TOO_SHORT', `durationSeconds must be at least ${this.#minJit}`, 422);
        const open = await tx.db.selectFrom('access_requests').select('id').where('principal_id', '=', input.principalId).where('entitlement', '=', input.entitlement).where('status', '=', 'pending').executeTakeFirst();
        if (open) throw new MandateError('ACCESS_REQUEST_EXISTS', `a request for ${input.entitlement} by ${input.principalId} is already pending`, 409, { id: open.id });
        // Refuse early what could never be granted; the check runs again at approval.
        const conflict = await this.#sod.conflictFor(tx, principal, input.entitlement);
        if (conflict) throw new MandateError('SOD_CONFLICT', `${input.entitlement} for ${principal.id} would violate separation-of-duties rule "${conflict.rule}": conflicts with ${conflict.conflictsWith} held by ${conflict.heldBy}`, 409, { ...conflict });
        const now = this.#clock.now();
        const row: Database['access_requests'] = {
          id: newId('req', now.getTime()),
          principal_id: input.principalId,
          entitlement: input.entitlement,
          requester_id: requesterId,
          justification: input.justification,
          duration_seconds: input.durationSeconds,
          status: 'pending',
          rule_pattern: rule.pattern,
          stages: JSON.stringify(rule.stages),
          grant_id: null,
          created_by: actor,
          created_at: now.toISOString(),
          decided_at: null,
        };
        await tx.db.insertInto('access_requests').values(row).execute();
        await this.#audit.appendIn(tx, { actor, action: 'access.request', target: input.principalId, outcome: 'success', details: { requestId: row.id, entitlement: row.entitlement, requesterId, durationSeconds: row.duration_seconds, justification: row.justification, rule: rule.pattern ?? 'default' } });
        return this.#load(tx.db, row.id);
      }),
    );
  }

  async get(id: string): Promise<AccessRequest> {
    return this.#load(this.#store.db, id);
  }

  async list(filter: { status?: AccessRequest['status'] | undefined; principalId?: string | undefined; cursor?: string | undefined; limit: number }): Promise<Page<AccessRequest>> {
    let query = this.#store.db.selectFrom('access_requests').select('id').orderBy('id').limit(filter.limit + 1);
    // An approved request reads `expired` once its grant ran out, before the expiry job updates the row.
    if (filter.status === 'expired') query = query.where('status', 'in', ['approved', 'expired']);
    else if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.principalId) query = query.where('principal_id', '=', filter.principalId);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    const rows = await query.execute();
    const page = rows.slice(0, filter.limit);
    let items = await Promise.all(page.map((r) => this.#load(this.#store.db, r.id)));
    // `expired` and `approved` share a row status until the expiry job runs; tell them apart by the clock.
    if (filter.status === 'approved' || filter.status === 'expired') items = items.filter((i) => i.status === filter.status);
    return { items, next: rows.length > filter.limit ? page[page.length - 1]!.id : null };
  }

  /** Humans who may approve this request now, per stage (active humans, never the requester or beneficiary). */
  async eligibleApprovers(db: Tx['db'] | Store['db'], request: Pick<AccessRequest, 'principalId' | 'requesterId' | 'stages'>): Promise<string[][]> {
    const principal = await findPrincipal(db, request.principalId);
    const out: string[][] = [];
    for (const stage of request.stages) {
      const candidates: string[] = [];
      for (const spec of stage.approvers) candidates.push(...(await this.#resolve(db, spec, principal)));
      const active = await activeHumans(db, candidates);
      out.push([...active].filter((id) => id !== request.principalId && id !== request.requesterId).sort());
    }
    return out;
  }

  async #resolve(db: Tx['db'] | Store['db'], spec: ApproverSpec, principal: Principal | undefined): Promise<string[]> {
    if (!principal) return [];
    switch (spec.kind) {
      case 'owner':
        return principal.kind === 'human' ? (principal.managerId ? [principal.managerId] : []) : principal.ownerId ? [principal.ownerId] : [];
      case 'manager': {
        if (principal.kind === 'human') return principal.managerId ? [principal.managerId] : [];
        if (!principal.ownerId) return [];
        const owner = await db.selectFrom('humans').select('manager_id').where('id', '=', principal.ownerId).executeTakeFirst();
        return owner?.manager_id ? [owner.manager_id] : [];
      }
      case 'human':
        return [spec.id];
      case 'group':
        return groupMembers(db, spec.id);
    }
  }

  /**
   * Records an approval. When every stage has its required approvals the grant is created in the same
   * transaction (separation of duties checked again, 409 SOD_CONFLICT with nothing written), with
   * `expiresAt = now + durationSeconds`; it counts in decisions as soon as this returns.
   */
  async approve(id: string, input: { approverId: string; comment?: string | undefined }, actor: string): Promise<AccessRequest> {
    const result = await this.#refusalsAudited(actor, 'access.approve', id, { approverId: input.approverId }, () =>
      this.#store.transaction(async (tx) => {
        // Lock first, then read: a concurrent approval (another replica) that completed the request is
        // visible once the lock is ours, so it is not granted twice.
        const principal = await this.#grants.lockPrincipal(tx, (await this.#load(tx.db, id)).principalId);
        const request = await this.#decidable(tx, id, input.approverId, actor);
        // Take the request's row lock now, before the audit chain's lock: a concurrent denial (which locks
        // the row, then the chain) would otherwise deadlock with this approval.
        const held = await tx.db.updateTable('access_requests').set({ status: 'pending' }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
        if (Number(held.numUpdatedRows) !== 1) throw new MandateError('ACCESS_REQUEST_NOT_PENDING', `request ${id} was decided concurrently`, 409);
        const now = this.#clock.now();
        await tx.db.insertInto('access_approvals').values({ request_id: id, approver_id: input.approverId, decision: 'approve', comment: input.comment ?? null, created_at: now.toISOString() }).execute();
        await this.#audit.appendIn(tx, { actor, action: 'access.approve', target: request.principalId, outcome: 'success', details: { requestId: id, approverId: input.approverId, entitlement: request.entitlement, comment: input.comment ?? null } });
        const eligible = await this.eligibleApprovers(tx.db, request);
        const approvals = new Set([...request.decisions.filter((d) => d.decision === 'approve').map((d) => d.approverId), input.approverId]);
        const complete = stagesSatisfied(request.stages.map((stage, i) => ({ eligible: eligible[i] ?? [], required: stage.required })), approvals);
        if (!complete) return { request: await this.#load(tx.db, id), principalId: null };
        if (principal.status !== 'active') throw new MandateError('PRINCIPAL_NOT_ACTIVE', `${principal.kind} ${principal.id} is ${principal.status}`, 409);
        const expiresAt = new Date(now.getTime() + request.durationSeconds * 1000).toISOString();
        const grant = await this.#grants.grantIn(tx, principal, { kind: 'jit', entitlement: request.entitlement, expiresAt, reason: request.justification, requestId: id }, `${actor}`);
        const updated = await tx.db.updateTable('access_requests').set({ status: 'approved', grant_id: grant.id, decided_at: now.toISOString() }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) throw new MandateError('ACCESS_REQUEST_NOT_PENDING', `request ${id} was decided concurrently`, 409);
        await this.#audit.appendIn(tx, { actor, action: 'access.grant', target: request.principalId, outcome: 'success', details: { requestId: id, grantId: grant.id, entitlement: request.entitlement, expiresAt, approvers: [...approvals].sort() } });
        return { request: await this.#load(tx.db, id), principalId: principal.id };
      }),
    );
    // Effective at once: this replica's cache is current before the answer goes out.
    if (result.principalId) await this.#grants.entitlementsOf(result.principalId);
    return result.request;
  }

  /** One eligible denial ends the request. */
  async deny(id: string, input: { approverId: string; comment?: string | undefined }, actor: string): Promise<AccessRequest> {
    return this.#refusalsAudited(actor, 'access.deny', id, { approverId: input.approverId }, () =>
      this.#store.transaction(async (tx) => {
        const request = await this.#decidable(tx, id, input.approverId, actor);
        const now = this.#clock.now().toISOString();
        await tx.db.insertInto('access_approvals').values({ request_id: id, approver_id: input.approverId, decision: 'deny', comment: input.comment ?? null, created_at: now }).execute();
        // Conditional: a concurrent approval that already granted wins; this denial is then refused.
        const updated = await tx.db.updateTable('access_requests').set({ status: 'denied', decided_at: now }).where('id', '=', id).where('status', '=', 'pending').executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) throw new MandateError('ACCESS_REQUEST_NOT_PENDING', `request ${id} was decided concurrently`, 409);
        await this.#audit.appendIn(tx, { actor, action: 'access.deny', target: request.principalId, outcome: 'success', details: { requestId: id, approverId: input.approverId, entitlement: request.entitlement, comment: input.comment ?? null } });
        return this.#load(tx.db, id);
      }),
    );
  }

  /**
   * Pending requests nobody decided within `olderThanSeconds` lapse (status `expired`, no grant), each
   * audited: a request must not wait for months and be approved out of context. Idempotent.
   */
  async lapsePending(olderThanSeconds: number, actor = 'system:governance.expiry'): Promise<{ lapsed: string[] }> {
    const cutoff = new Date(this.#clock.now().getTime() - olderThanSeconds * 1000).toISOString();
    const stale = await this.#store.db.selectFrom('access_requests').select(['id', 'principal_id', 'entitlement', 'created_at']).where('status', '=', 'pending').where('created_at', '<=', cutoff).orderBy('id').limit(1000).execute();
    const lapsed: string[] = [];
    for (const row of stale) {
      await this.#store.transaction(async (tx) => {
        const result = await tx.db.updateTable('access_requests').set({ status: 'expired', decided_at: this.#clock.now().toISOString() }).where('id', '=', row.id).where('status', '=', 'pending').executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return;
        await this.#audit.appendIn(tx, { actor, action: 'access.lapse', target: row.principal_id, outcome: 'success', details: { requestId: row.id, entitlement: row.entitlement, createdAt: row.created_at, pendingSeconds: olderThanSeconds } });
        lapsed.push(row.id);
      });
    }
    return { lapsed };
  }

  /** Early revoke of an approved request's grant. */
  async revoke(id: string, reason: string | null, actor: string): Promise<AccessRequest> {
    const request = await this.get(id);
    if (request.status !== 'approved' || !request.grantId) throw new MandateError('ACCESS_REQUEST_NOT_ACTIVE', `request ${id} is ${request.status}: nothing to revoke`, 409, { requestStatus: request.status });
    await this.#grants.revoke(request.grantId, reason ?? 'early revoke', actor);
    return this.get(id);
  }

  async #decidable(tx: Tx, id: string, approverId: string, actor: string): Promise<AccessRequest> {
    // Once humans sign in, a human caller may only decide as themselves.
    if (actor.startsWith('human:') && actor !== `human:${approverId}`) throw new MandateError('APPROVER_MISMATCH', 'you may only decide as yourself', 403);
    const request = await this.#load(tx.db, id);
    if (request.status !== 'pending') throw new MandateError('ACCESS_REQUEST_NOT_PENDING', `request ${id} is ${request.status}`, 409, { requestStatus: request.status });
    if (approverId === request.principalId || approverId === request.requesterId) throw new MandateError('ACCESS_SELF_APPROVAL', 'the requester or beneficiary cannot decide their own request', 403);
    const eligible = await this.eligibleApprovers(tx.db, request);
    if (!eligible.some((stage) => stage.includes(approverId))) throw new MandateError('APPROVER_NOT_ELIGIBLE', `${approverId} is not an eligible active approver for this request`, 403, { eligible });
    if (request.decisions.some((d) => d.approverId === approverId)) throw new MandateError('ACCESS_ALREADY_DECIDED', `${approverId} has already decided this request`, 409);
    return request;
  }

  async #load(db: Tx['db'] | Store['db'], id: string): Promise<AccessRequest> {
    const row = await db.selectFrom('access_requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('access_request', id);
    const decisions = await db.selectFrom('access_approvals').selectAll().where('request_id', '=', id).orderBy('created_at').orderBy('approver_id').execute();
    const grant = row.grant_id ? await db.selectFrom('grants').select(['expires_at', 'status']).where('id', '=', row.grant_id).executeTakeFirst() : undefined;
    const expiresAt = grant?.expires_at ?? null;
    const expired = row.status === 'approved' && expiresAt !== null && Date.parse(expiresAt) <= this.#clock.now().getTime();
    return {
      id: row.id,
      principalId: row.principal_id,
      entitlement: row.entitlement,
      requesterId: row.requester_id,
      justification: row.justification,
      durationSeconds: row.duration_seconds,
      status: expired ? 'expired' : row.status,
      rulePattern: row.rule_pattern,
      stages: JSON.parse(row.stages) as ApprovalStage[],
      decisions: decisions.map((d): AccessDecisionRecord => ({ approverId: d.approver_id, decision: d.decision, comment: d.comment, at: d.created_at })),
      grantId: row.grant_id,
      expiresAt,
      createdBy: row.created_by,
      createdAt: row.created_at,
      decidedAt: row.decided_at,
    };
  }

  async #refusalsAudited<T>(actor: string, action: string, target: string, details: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof MandateError && error.status < 500 && error.status !== 404) {
        await this.#audit.append({ actor, action, target, outcome: 'denied', details: { ...details, code: error.code, ...(error.code === 'SOD_CONFLICT' && { rule: error.details?.rule }) } });
      }
      throw error;
    }
  }
}

/**
 * Whether the approvals cover every stage with *distinct* people: each approver counts for one stage only
 * (bipartite matching of approvers to the stages' required slots, Kuhn's augmenting paths — at most
 * 5 stages × 20 slots). Counting one person in every stage they are eligible for let a single approval
 * satisfy a two-stage (four-eyes) rule.
 */
export function stagesSatisfied(stages: readonly { eligible: readonly string[]; required: number }[], approvals: ReadonlySet<string>): boolean {
  const slots: (readonly string[])[] = [];
  for (const stage of stages) {
    const eligible = stage.eligible.filter((a) => approvals.has(a));
    if (eligible.length < stage.required) return false;
    for (let i = 0; i < stage.required; i++) slots.push(eligible);
  }
  const holder = new Map<string, number>(); // approver → slot index
  const assign = (slot: number, seen: Set<string>): boolean => {
    for (const a of slots[slot] ?? []) {
      if (seen.has(a)) continue;
      seen.add(a);
      const other = holder.get(a);
      if (other === undefined || assign(other, seen)) {
        holder.set(a, slot);
        return true;
      }
    }
    return false;
  };
  for (let slot = 0; slot < slots.length; slot++) if (!assign(slot, new Set())) return false;
  return true;
}
