import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../core/clock.ts';
import { open, randomToken, seal } from '../core/crypto.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database, Store, Tx } from '../store/index.ts';
import type { GrantService } from './grants.ts';
import { accountableHuman, activeHumans, findPrincipal } from './principals.ts';
import type { Certification, CertificationItem, CertificationScope } from './types.ts';
import { assertWebhookUrl, postSigned } from './webhook.ts';

export interface CertificationInput {
  name: string;
  scope: CertificationScope;
  reviewers?: 'owners' | { humanIds: string[] } | undefined;
  deadline: string;
  onNoAnswer?: 'revoke' | 'keep' | undefined;
  /** Reminders go here (signed); the secret is returned once, at creation. */
  webhookUrl?: string | undefined;
  /** Seconds before the deadline at which to remind; default one day. */
  remindBeforeSeconds?: number[] | undefined;
}

export interface CertificationOptions {
  masterKey: Uint8Array;
  allowHttpWebhooks: boolean;
}

export interface CertificationReport {
  campaign: Certification;
  counts: { items: number; pending: number; keep: number; revoke: number; delegated: number; unassigned: number; decidedByReviewers: number; decidedAtDeadline: number };
  decisions: { itemId: string; principalId: string; entitlement: string; decision: 'keep' | 'revoke'; decidedBy: string | null; source: 'reviewer' | 'deadline' | null; comment: string | null; decidedAt: string | null }[];
  revocations: { itemId: string; principalId: string; entitlement: string; grantIds: string[]; source: 'reviewer' | 'deadline' | null }[];
  pending: { itemId: string; principalId: string; entitlement: string; reviewerIds: string[] }[];
}

type Decision = { decision: 'keep' | 'revoke'; comment?: string | undefined } | { decision: 'delegate'; to: string; comment?: string | undefined };

function toCampaign(row: Database['certifications']): Certification {
  return {
    id: row.id,
    name: row.name,
    scope: JSON.parse(row.scope) as CertificationScope,
    reviewers: JSON.parse(row.reviewers) as Certification['reviewers'],
    deadline: row.deadline,
    onNoAnswer: row.on_no_answer,
    status: row.status,
    webhookUrl: row.webhook_url,
    remindBeforeSeconds: JSON.parse(row.remind_before) as number[],
    remindersSent: JSON.parse(row.reminders_sent) as number[],
    lastReminderError: row.last_reminder_error,
    createdBy: row.created_by,
    createdAt: row.created_at,
    closedAt: row.closed_at,
  };
}

function toItem(row: Database['certification_items']): CertificationItem {
  return {
    id: row.id,
    campaignId: row.campaign_id,
    principalId: row.principal_id,
    entitlement: row.entitlement,
    grantIds: JSON.parse(row.grant_ids) as string[],
    reviewerIds: JSON.parse(row.reviewer_ids) as string[],
    status: row.status,
    decidedBy: row.decided_by,
    decisionSource: row.decision_source,
    comment: row.comment,
    delegations: JSON.parse(row.delegations) as CertificationItem['delegations'],
    revokedGrantIds: JSON.parse(row.revoked_grant_ids) as string[],
    decidedAt: row.decided_at,
  };
}

/**
 * Access certification: reviewers (owners by default) confirm, one item per (principal, entitlement),
 * that what is held is still needed — keep, revoke, or delegate to someone better placed. Reminders go
 * to a signed webhook before the deadline; at the deadline unanswered items get `onNoAnswer` (revoke by
 * default: access nobody vouches for goes).
 */
export class CertificationService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #grants: GrantService;
  readonly #options: CertificationOptions;

  constructor(store: Store, audit: AuditLog, clock: Clock, grants: GrantService, options: CertificationOptions) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = clock;
    this.#grants = grants;
    this.#options = options;
  }

  async create(input: CertificationInput, actor: string): Promise<{ campaign: Certification; items: number; webhookSecret?: string }> {
    const now = this.#clock.now();
    const deadline = Date.parse(input.deadline);
    if (!Number.isFinite(deadline) || deadline <= now.getTime()) throw new MandateError('CERTIFICATION_DEADLINE_INVALID', 'deadline must be a time in the future', 400);
    if (input.webhookUrl !== undefined) assertWebhookUrl(input.webhookUrl, this.#options.allowHttpWebhooks);
    const reviewers = input.reviewers ?? 'owners';
    const id = newId('crt', now.getTime());
    const secret = input.webhookUrl !== undefined ? `whsec_${randomToken(32)}` : undefined;
    const result = await this.#store.transaction(async (tx) => {
      if (reviewers !== 'owners') {
        const active = await activeHumans(tx.db, reviewers.humanIds);
        const missing = reviewers.humanIds.filter((h) => !active.has(h));
        if (missing.length > 0) throw new MandateError('REVIEWER_INVALID', `reviewers must be active humans: ${missing.join(', ')}`, 422, { missing });
      }
      const principals = await this.#principalsInScope(tx, input.scope);
      const held = await this.#grants.activeIn(tx.db, principals);
      const byPair = new Map<string, { principalId: string; entitlement: string; grantIds: string[] }>();
      for (const g of held) {
        const key = `${g.principal_id}\u0000${g.entitlement}`;
        const entry = byPair.get(key) ?? { principalId: g.principal_id, entitlement: g.entitlement, grantIds: [] };
        entry.grantIds.push(g.id);
        byPair.set(key, entry);
      }
      const reviewerCache = new Map<string, string[]>();
      let count = 0;
      for (const entry of byPair.values()) {
        let reviewerIds = reviewerCache.get(entry.principalId);
        if (!reviewerIds) {
          reviewerIds = await this.#reviewersFor(tx, entry.principalId, reviewers);
          reviewerCache.set(entry.principalId, reviewerIds);
        }
        await tx.db
          .insertInto('certification_items')
          .values({
            id: newId('cri', now.getTime()),
            campaign_id: id,
            principal_id: entry.principalId,
            entitlement: entry.entitlement,
            grant_ids: JSON.stringify(entry.grantIds),
            reviewer_ids: JSON.stringify(reviewerIds),
            status: 'pending',
            decided_by: null,
            decision_source: null,
            comment: null,
            delegations: '[]',
            revoked_grant_ids: '[]',
            decided_at: null,
          })
          .execute();
        count += 1;
      }
      const row: Database['certifications'] = {
        id,
        name: input.name,
        scope: JSON.stringify(input.scope),
        reviewers: JSON.stringify(reviewers),
        deadline: new Date(deadline).toISOString(),
        on_no_answer: input.onNoAnswer ?? 'revoke',
        status: 'open',
        webhook_url: input.webhookUrl ?? null,
        // Bound to the campaign id: a sealed secret copied to another row does not open.
        sealed_secret: secret ? seal(this.#options.masterKey, secret, `certification:${id}`) : null,
        remind_before: JSON.stringify([...new Set(input.remindBeforeSeconds ?? (input.webhookUrl ? [86_400] : []))].sort((a, b) => b - a)),
        reminders_sent: '[]',
        last_reminder_error: null,
        created_by: actor,
        created_at: now.toISOString(),
        closed_at: null,
      };
      await tx.db.insertInto('certifications').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'certification.create', target: id, outcome: 'success', details: { name: input.name, scope: input.scope, reviewers, deadline: row.deadline, onNoAnswer: row.on_no_answer, items: count, webhookUrl: row.webhook_url } });
      return { campaign: toCampaign(row), items: count };
    });
    return secret ? { ...result, webhookSecret: secret } : result;
  }

  async get(id: string): Promise<Certification> {
    const row = await this.#store.db.selectFrom('certifications').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('certification', id);
    return toCampaign(row);
  }

  async list(): Promise<Certification[]> {
    const rows = await this.#store.db.selectFrom('certifications').selectAll().orderBy('id', 'desc').limit(500).execute();
    return rows.map(toCampaign);
  }

  async items(campaignId: string, filter: { status?: CertificationItem['status'] | undefined; reviewerId?: string | undefined } = {}): Promise<CertificationItem[]> {
    await this.get(campaignId);
    let query = this.#store.db.selectFrom('certification_items').selectAll().where('campaign_id', '=', campaignId).orderBy('id');
    if (filter.status) query = query.where('status', '=', filter.status);
    let items = (await query.execute()).map(toItem);
    if (filter.reviewerId) items = items.filter((i) => i.reviewerIds.includes(filter.reviewerId!));
    return items;
  }

  /** A reviewer's answer to one item: keep, revoke (the grants go now), or delegate to another human. */
  async decide(campaignId: string, itemId: string, input: { reviewerId: string } & Decision, actor: string): Promise<CertificationItem> {
    if (actor.startsWith('human:') && actor !== `human:${input.reviewerId}`) throw new MandateError('REVIEWER_MISMATCH', 'you may only decide as yourself', 403);
    const { item, principalId } = await this.#store.transaction(async (tx) => {
      const campaign = await tx.db.selectFrom('certifications').selectAll().where('id', '=', campaignId).executeTakeFirst();
      if (!campaign) throw notFound('certification', campaignId);
      const now = this.#clock.now();
      if (campaign.status !== 'open' || Date.parse(campaign.deadline) <= now.getTime()) throw new MandateError('CERTIFICATION_CLOSED', `campaign ${campaignId} is closed`, 409);
      const row = await tx.db.selectFrom('certification_items').selectAll().where('id', '=', itemId).where('campaign_id', '=', campaignId).executeTakeFirst();
      if (!row) throw notFound('certification_item', itemId);
      const current = toItem(row);
      if (current.status !== 'pending') throw new MandateError('CERTIFICATION_ITEM_DECIDED', `item ${itemId} is already decided (${current.status})`, 409);
      if (!current.reviewerIds.includes(input.reviewerId) || !(await activeHumans(tx.db, [input.reviewerId])).has(input.reviewerId)) {
        throw new MandateError('REVIEWER_NOT_ASSIGNED', `${input.reviewerId} is not an active reviewer of this item`, 403);
      }
      const at = now.toISOString();
      if (input.decision === 'delegate') {
        if (input.to === current.principalId || input.to === input.reviewerId) throw new MandateError('DELEGATE_INVALID', 'delegate to someone other than yourself and the holder', 422);
        if (!(await activeHumans(tx.db, [input.to])).has(input.to)) throw new MandateError('DELEGATE_INVALID', `${input.to} is not an active human`, 422);
        const delegations = [...current.delegations, { from: input.reviewerId, to: input.to, at }];
        const moved = await tx.db.updateTable('certification_items').set({ reviewer_ids: JSON.stringify([input.to]), delegations: JSON.stringify(delegations) }).where('id', '=', itemId).where('status', '=', 'pending').where('reviewer_ids', '=', row.reviewer_ids).executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) throw new MandateError('CERTIFICATION_ITEM_DECIDED', `item ${itemId} was decided or delegated concurrently`, 409);
        await this.#audit.appendIn(tx, { actor, action: 'certification.delegate', target: current.principalId, outcome: 'success', details: { campaignId, itemId, entitlement: current.entitlement, from: input.reviewerId, to: input.to, comment: input.comment ?? null } });
        return { item: { ...current, reviewerIds: [input.to], delegations }, principalId: null };
      }
      // Claim the item first (conditional, and its row lock comes before the revocation's and the audit
      // chain's locks, so two concurrent answers never deadlock): of two answers (keep and revoke, or an
      // answer and a delegation) exactly one is recorded; the other is refused.
      const claimed = await tx.db
        .updateTable('certification_items')
        .set({ status: input.decision, decided_by: input.reviewerId, decision_source: 'reviewer', comment: input.comment ?? null, decided_at: at })
        .where('id', '=', itemId)
        .where('status', '=', 'pending')
        .where('reviewer_ids', '=', row.reviewer_ids)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) throw new MandateError('CERTIFICATION_ITEM_DECIDED', `item ${itemId} was decided or delegated concurrently`, 409);
      const revoked = input.decision === 'revoke' ? await this.#revokeItem(tx, current, `certification ${campaignId}: revoked by ${input.reviewerId}`, actor) : [];
      await tx.db.updateTable('certification_items').set({ revoked_grant_ids: JSON.stringify(revoked) }).where('id', '=', itemId).execute();
      await this.#audit.appendIn(tx, { actor, action: `certification.${input.decision}`, target: current.principalId, outcome: 'success', details: { campaignId, itemId, entitlement: current.entitlement, reviewerId: input.reviewerId, revokedGrantIds: revoked, comment: input.comment ?? null } });
      const item: CertificationItem = { ...current, status: input.decision, decidedBy: input.reviewerId, decisionSource: 'reviewer', comment: input.comment ?? null, decidedAt: at, revokedGrantIds: revoked };
      return { item, principalId: revoked.length > 0 ? current.principalId : null };
    });
    if (principalId) await this.#grants.entitlementsOf(principalId);
    return item;
  }

  async report(id: string): Promise<CertificationReport> {
    const campaign = await this.get(id);
    const items = await this.items(id);
    const decided = items.filter((i) => i.status !== 'pending');
    return {
      campaign,
      counts: {
        items: items.length,
        pending: items.length - decided.length,
        keep: items.filter((i) => i.status === 'keep').length,
        revoke: items.filter((i) => i.status === 'revoke').length,
        delegated: items.filter((i) => i.delegations.length > 0).length,
        unassigned: items.filter((i) => i.reviewerIds.length === 0).length,
        decidedByReviewers: decided.filter((i) => i.decisionSource === 'reviewer').length,
        decidedAtDeadline: decided.filter((i) => i.decisionSource === 'deadline').length,
      },
      decisions: decided.map((i) => ({ itemId: i.id, principalId: i.principalId, entitlement: i.entitlement, decision: i.status as 'keep' | 'revoke', decidedBy: i.decidedBy, source: i.decisionSource, comment: i.comment, decidedAt: i.decidedAt })),
      revocations: decided.filter((i) => i.status === 'revoke').map((i) => ({ itemId: i.id, principalId: i.principalId, entitlement: i.entitlement, grantIds: i.revokedGrantIds, source: i.decisionSource })),
      pending: items.filter((i) => i.status === 'pending').map((i) => ({ itemId: i.id, principalId: i.principalId, entitlement: i.entitlement, reviewerIds: i.reviewerIds })),
    };
  }

  /**
   * The deadline job: every open campaign whose deadline has passed gets `onNoAnswer` applied to its
   * unanswered items and is closed, in one transaction per campaign. Idempotent: a closed campaign is
   * never processed again, and the close is conditional on the campaign still being open.
   */
  async closeDue(actor = 'system:governance.certifications'): Promise<{ closed: string[]; revoked: number; kept: number }> {
    const nowIso = this.#clock.now().toISOString();
    const due = await this.#store.db.selectFrom('certifications').select('id').where('status', '=', 'open').where('deadline', '<=', nowIso).orderBy('deadline').execute();
    const closed: string[] = [];
    let revoked = 0;
    let kept = 0;
    for (const { id } of due) {
      const touched = await this.#store.transaction(async (tx) => {
        const claim = await tx.db.updateTable('certifications').set({ status: 'closed', closed_at: nowIso }).where('id', '=', id).where('status', '=', 'open').executeTakeFirst();
        if (Number(claim.numUpdatedRows) !== 1) return [];
        const campaign = toCampaign((await tx.db.selectFrom('certifications').selectAll().where('id', '=', id).executeTakeFirstOrThrow()));
        const pending = (await tx.db.selectFrom('certification_items').selectAll().where('campaign_id', '=', id).where('status', '=', 'pending').execute()).map(toItem);
        const principals = new Set<string>();
        let campaignRevoked = 0;
        for (const item of pending) {
          const ids = campaign.onNoAnswer === 'revoke' ? await this.#revokeItem(tx, item, `certification ${id}: no answer by the deadline`, actor) : [];
          if (ids.length > 0) principals.add(item.principalId);
          await tx.db
            .updateTable('certification_items')
            .set({ status: campaign.onNoAnswer, decided_by: actor, decision_source: 'deadline', decided_at: nowIso, revoked_grant_ids: JSON.stringify(ids) })
            .where('id', '=', item.id)
            .execute();
          if (campaign.onNoAnswer === 'revoke') campaignRevoked += 1;
          else kept += 1;
        }
        revoked += campaignRevoked;
        await this.#audit.appendIn(tx, { actor, action: 'certification.close', target: id, outcome: 'success', details: { name: campaign.name, onNoAnswer: campaign.onNoAnswer, unanswered: pending.length, revokedItems: campaignRevoked } });
        closed.push(id);
        return [...principals];
      });
      for (const principalId of touched) await this.#grants.entitlementsOf(principalId);
    }
    return { closed, revoked, kept };
  }

  /**
   * The reminder job: for each open campaign with a webhook, once `now >= deadline - remindBefore`,
   * POSTs one signed reminder listing the pending items by reviewer. A reminder is marked sent only
   * when the receiver answered 2xx, so a receiver that is down gets it on a later run.
   */
  async remindDue(actor = 'system:governance.certifications'): Promise<{ sent: string[]; failed: string[] }> {
    const now = this.#clock.now();
    const campaigns = await this.#store.db.selectFrom('certifications').selectAll().where('status', '=', 'open').where('webhook_url', 'is not', null).where('deadline', '>', now.toISOString()).execute();
    const sent: string[] = [];
    const failed: string[] = [];
    for (const row of campaigns) {
      const campaign = toCampaign(row);
      const deadline = Date.parse(campaign.deadline);
      const due = campaign.remindBeforeSeconds.filter((s) => !campaign.remindersSent.includes(s) && now.getTime() >= deadline - s * 1000);
      if (due.length === 0) continue;
      const items = (await this.#store.db.selectFrom('certification_items').selectAll().where('campaign_id', '=', campaign.id).where('status', '=', 'pending').orderBy('id').execute()).map(toItem);
      const byReviewer = new Map<string, string[]>();
      for (const item of items) for (const r of item.reviewerIds) byReviewer.set(r, [...(byReviewer.get(r) ?? []), item.id]);
      const payload = {
        type: 'certification.reminder',
        campaign: { id: campaign.id, name: campaign.name, deadline: campaign.deadline, onNoAnswer: campaign.onNoAnswer },
        remindBeforeSeconds: Math.min(...due),
        pendingItems: items.length,
        reviewers: [...byReviewer].sort(([a], [b]) => a.localeCompare(b)).map(([reviewerId, itemIds]) => ({ reviewerId, itemIds })),
        sentAt: now.toISOString(),
      };
      let error: string | null = null;
      if (items.length > 0) {
        try {
          const secret = open(this.#options.masterKey, row.sealed_secret!, `certification:${campaign.id}`).toString('utf8');
          await postSigned(campaign.webhookUrl!, secret, payload, { 'mandate-event': 'certification.reminder' }, now.getTime());
        } catch (e) {
          error = (e as Error).message.slice(0, 500);
        }
      }
      await this.#store.transaction(async (tx) => {
        if (error === null) {
          const current = await tx.db.selectFrom('certifications').select('reminders_sent').where('id', '=', campaign.id).executeTakeFirstOrThrow();
          const merged = [...new Set([...(JSON.parse(current.reminders_sent) as number[]), ...due])].sort((a, b) => b - a);
          await tx.db.updateTable('certifications').set({ reminders_sent: JSON.stringify(merged), last_reminder_error: null }).where('id', '=', campaign.id).execute();
        } else {
          await tx.db.updateTable('certifications').set({ last_reminder_error: error }).where('id', '=', campaign.id).execute();
        }
        await this.#audit.appendIn(tx, { actor, action: 'certification.remind', target: campaign.id, outcome: error === null ? 'success' : 'failure', details: { remindBeforeSeconds: due, pendingItems: items.length, reviewers: byReviewer.size, ...(error !== null && { error }) } });
      });
      (error === null ? sent : failed).push(campaign.id);
    }
    return { sent, failed };
  }

  async #revokeItem(tx: Tx, item: CertificationItem, reason: string, actor: string): Promise<string[]> {
    const nowIso = this.#clock.now().toISOString();
    const still = await tx.db
      .selectFrom('grants')
      .select('id')
      .where('id', 'in', item.grantIds.length > 0 ? item.grantIds : [''])
      .where('status', '=', 'active')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)]))
      .execute();
    const revoked: string[] = [];
    for (const { id } of still) {
      await this.#grants.revokeIn(tx, id, reason, actor, 'grant.revoke');
      revoked.push(id);
    }
    return revoked;
  }

  async #principalsInScope(tx: Tx, scope: CertificationScope): Promise<string[]> {
    if ('all' in scope) {
      const rows = await tx.db.selectFrom('grants').select('principal_id').distinct().where('status', '=', 'active').execute();
      return rows.map((r) => r.principal_id);
    }
    if ('ownerId' in scope) {
      const rows = await tx.db.selectFrom('identities').select('id').where('owner_id', '=', scope.ownerId).where('status', '!=', 'decommissioned').execute();
      return rows.map((r) => r.id);
    }
    if ('tag' in scope) {
      const rows = await tx.db.selectFrom('identities').select(['id', 'tags']).where('status', '!=', 'decommissioned').execute();
      return rows.filter((r) => (JSON.parse(r.tags) as string[]).includes(scope.tag)).map((r) => r.id);
    }
    // A department: its people and the agents and workloads they own.
    const humans = await tx.db.selectFrom('humans').select('id').where('department', '=', scope.department).where('status', '!=', 'deleted').execute();
    const ids = humans.map((h) => h.id);
    if (ids.length === 0) return [];
    const owned = await tx.db.selectFrom('identities').select('id').where('owner_id', 'in', ids).where('status', '!=', 'decommissioned').execute();
    return [...ids, ...owned.map((r) => r.id)];
  }

  async #reviewersFor(tx: Tx, principalId: string, reviewers: 'owners' | { humanIds: string[] }): Promise<string[]> {
    // Nobody certifies their own access.
    if (reviewers !== 'owners') return [...new Set(reviewers.humanIds)].filter((h) => h !== principalId).sort();
    const principal = await findPrincipal(tx.db, principalId);
    const accountable = principal ? accountableHuman(principal) : null;
    if (!accountable || accountable === principalId) return [];
    return (await activeHumans(tx.db, [accountable])).has(accountable) ? [accountable] : [];
  }
}
