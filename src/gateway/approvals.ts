import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { MandateError } from '../core/errors.ts';
import { toPage } from '../core/page.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../store/index.ts';
import type { McpApprovalTable } from '../store/schema.ts';
import type { Vault } from '../vault/index.ts';

export const GATEWAY_APPROVAL_DECIDED = 'gateway.approval.decided';
export const APPROVAL_WEBHOOK_SECRET = 'mcp/approval-webhook-secret';

export type ApprovalStatus = McpApprovalTable['status'];

export interface Approval {
  id: string;
  status: ApprovalStatus;
  agentId: string;
  ownerId: string;
  userId: string | null;
  /** Who may decide: `owner`, or `group:<id>`. */
  approver: string;
  server: string;
  action: string;
  target: string;
  /** The call's arguments, redacted by the configured paths. */
  arguments: unknown;
  argsDigest: string;
  policies: string[];
  sessionId: string;
  decidedBy: string | null;
  reason: string | null;
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
}

export type ApprovalInput = Pick<Approval, 'agentId' | 'ownerId' | 'userId' | 'approver' | 'server' | 'action' | 'target' | 'arguments' | 'argsDigest' | 'policies' | 'sessionId'> & {
  timeoutSeconds: number;
};

/**
 * Human approval of gated calls (`@approval("owner")` on the permit that allowed them). The waiting call
 * holds its HTTP request open; the decision may be taken on any replica and reaches the waiter through
 * the store's change events. A request nobody decides in time expires, and an expired request denies.
 */
export class ApprovalService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #vault: Vault;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #waiters = new Map<string, (status: ApprovalStatus) => void>();
  #webhookUrl: () => string | null = () => null;
  #approverGroup: () => string | null = () => null;

  constructor(store: Store, audit: AuditLog, vault: Vault, logger: Logger, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#audit = audit;
    this.#vault = vault;
    this.#logger = logger;
    this.#clock = options.clock ?? systemClock;
    store.events.on(GATEWAY_APPROVAL_DECIDED, (event) => {
      const id = String(event.data.id);
      const status = String(event.data.status) as ApprovalStatus;
      this.#waiters.get(id)?.(status);
    });
  }

  configure(options: { webhookUrl: () => string | null; approverGroup: () => string | null }): void {
    this.#webhookUrl = options.webhookUrl;
    this.#approverGroup = options.approverGroup;
  }

  /** Creates the request, announces it, and resolves with the human's decision, or `expired`, or `cancelled`. */
  /** `onCreated` runs once the request is stored (the caller may tell the agent it is waiting). */
  async request(input: ApprovalInput, signal: AbortSignal, onCreated?: (approval: Approval) => void): Promise<{ approval: Approval; status: ApprovalStatus }> {
    const now = this.#clock.now();
    const id = newId('apr');
    const row: McpApprovalTable = {
      id,
      status: 'pending',
      agent_id: input.agentId,
      owner_id: input.ownerId,
      user_id: input.userId,
      approver: input.approver,
      server: input.server,
      action: input.action,
      target: input.target,
      arguments: JSON.stringify(input.arguments ?? {}),
      args_digest: input.argsDigest,
      policies: JSON.stringify(input.policies),
      session_id: input.sessionId,
      decided_by: null,
      reason: null,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + input.timeoutSeconds * 1000).toISOString(),
      decided_at: null,
    };
    // Register the waiter before the row exists anywhere: a decision cannot slip in unseen.
    const decided = new Promise<ApprovalStatus>((resolve) => this.#waiters.set(id, resolve));
    try {
      await this.#store.transaction(async (tx) => {
        await tx.db.insertInto('mcp_approvals').values(row).execute();
        await this.#audit.appendIn(tx, { actor: `agent:${input.agentId}`, action: 'mcp.approval.request', target: id, outcome: 'pending', details: { server: input.server, action: input.action, target: input.target, argsDigest: input.argsDigest, approver: input.approver, userId: input.userId, policies: input.policies } });
      });
      const approval = toApproval(row);
      void this.#notify(approval);
      onCreated?.(approval);
      const timer = setTimeout(() => void this.#expire(id), input.timeoutSeconds * 1000);
      const aborted = new Promise<ApprovalStatus>((resolve) => {
        if (signal.aborted) resolve('cancelled');
        signal.addEventListener('abort', () => resolve('cancelled'), { once: true });
      });
      let status = await Promise.race([decided, aborted]);
      clearTimeout(timer);
      if (status === 'cancelled') status = (await this.#settle(id, 'cancelled', 'system:gateway', 'the session was closed or the request cancelled')).status;
      return { approval: { ...approval, status }, status };
    } finally {
      this.#waiters.delete(id);
    }
  }

  async get(id: string): Promise<Approval> {
    const row = await this.#store.db.selectFrom('mcp_approvals').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new MandateError('APPROVAL_NOT_FOUND', `approval ${id} not found`, 404, { id });
    return toApproval(row);
  }

  async list(filter: { status?: ApprovalStatus | undefined; agentId?: string | undefined; ownerId?: string | undefined; cursor?: string | undefined; limit: number }): Promise<{ items: Approval[]; next: string | null }> {
    let query = this.#store.db.selectFrom('mcp_approvals').selectAll().orderBy('id').limit(filter.limit + 1);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.agentId) query = query.where('agent_id', '=', filter.agentId);
    if (filter.ownerId) query = query.where('owner_id', '=', filter.ownerId);
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    return toPage(await query.execute(), filter.limit, toApproval);
  }

  /**
   * A human's decision. Admins may decide any request; a human (`human:<id>` actor) only when they are
   * the agent's owner or, for group approvals and the configured approver group, a member.
   */
  async decide(id: string, verdict: 'approve' | 'deny', actor: string, reason: string | null): Promise<Approval> {
    const approval = await this.get(id);
    await this.#authorize(approval, actor);
    if (approval.status !== 'pending') throw new MandateError('APPROVAL_CLOSED', `approval ${id} is already ${approval.status}`, 409, { approvalStatus: approval.status });
    if (approval.expiresAt <= this.#clock.now().toISOString()) {
      // Says what the request became: a decision on another replica may have beaten the expiry.
      const { status } = await this.#settle(id, 'expired', 'system:gateway', 'nobody decided in time');
      throw new MandateError('APPROVAL_CLOSED', `approval ${id} is already ${status}`, 409, { approvalStatus: status });
    }
    // Only the decision that moved the request out of `pending` succeeds: a second one, even the same
    // verdict at the same moment, is a conflict (its reason and decider were not recorded).
    const { status, settled } = await this.#settle(id, verdict === 'approve' ? 'approved' : 'denied', actor, reason);
    if (!settled) throw new MandateError('APPROVAL_CLOSED', `approval ${id} is already ${status}`, 409, { approvalStatus: status });
    return this.get(id);
  }

  /** Kill switch: every pending request of these agents is cancelled (their waiting calls fail). */
  async cancelForAgents(agentIds: string[]): Promise<number> {
    if (agentIds.length === 0) return 0;
    const rows = await this.#store.db.selectFrom('mcp_approvals').select('id').where('agent_id', 'in', agentIds).where('status', '=', 'pending').execute();
    for (const row of rows) await this.#settle(row.id, 'cancelled', 'system:kill-switch', 'the agent was suspended');
    return rows.length;
  }

  async #expire(id: string): Promise<void> {
    await this.#settle(id, 'expired', 'system:gateway', 'nobody decided in time').catch((error) => this.#logger.error({ err: error, id }, 'approval expiry failed'));
  }

  /** Moves a pending request to `status` (only if still pending: first decision wins); returns the final status and whether this call set it. */
  async #settle(id: string, status: ApprovalStatus, actor: string, reason: string | null): Promise<{ status: ApprovalStatus; settled: boolean }> {
    return this.#store.transaction(async (tx) => {
      const result = await tx.db
        .updateTable('mcp_approvals')
        .set({ status, decided_by: actor, reason, decided_at: this.#clock.now().toISOString() })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) {
        const row = await tx.db.selectFrom('mcp_approvals').select('status').where('id', '=', id).executeTakeFirst();
        return { status: row?.status ?? status, settled: false };
      }
      await this.#audit.appendIn(tx, { actor, action: `mcp.approval.${status}`, target: id, outcome: status === 'approved' ? 'success' : 'deny', details: { reason } });
      tx.publish(GATEWAY_APPROVAL_DECIDED, { id, status });
      return { status, settled: true };
    });
  }

  async #authorize(approval: Approval, actor: string): Promise<void> {
    if (actor === 'admin') return;
    const human = /^human:(hum_[0-9a-z]{26})$/.exec(actor)?.[1];
    if (human) {
      if (approval.approver === 'owner' && human === approval.ownerId) return;
      const groups = [approval.approver.startsWith('group:') ? approval.approver.slice(6) : null, this.#approverGroup()].filter((g): g is string => g !== null);
      if (groups.length > 0) {
        const member = await this.#store.db.selectFrom('group_members').select('group_id').where('human_id', '=', human).where('group_id', 'in', groups).executeTakeFirst();
        if (member) return;
      }
    }
    throw new MandateError('APPROVAL_FORBIDDEN', 'only the agent\'s owner, the approver group or an admin may decide this request', 403);
  }

  async #notify(approval: Approval): Promise<void> {
    const url = this.#webhookUrl();
    if (!url) return;
    try {
      const body = JSON.stringify({ type: 'mcp.approval.requested', approval });
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const secret = await this.#vault.reveal(APPROVAL_WEBHOOK_SECRET);
      if (secret) {
        // Stripe-style: the timestamp is signed with the body so a captured delivery cannot be replayed later.
        const timestamp = Math.floor(Date.now() / 1000);
        headers['mandate-signature'] = `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
      }
      const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000), redirect: 'manual' });
      if (!response.ok) this.#logger.warn({ status: response.status, approval: approval.id }, 'approval webhook refused the notification');
    } catch (error) {
      this.#logger.warn({ err: (error as Error).message, approval: approval.id }, 'approval webhook unreachable');
    }
  }
}

function toApproval(row: McpApprovalTable): Approval {
  return {
    id: row.id,
    status: row.status,
    agentId: row.agent_id,
    ownerId: row.owner_id,
    userId: row.user_id,
    approver: row.approver,
    server: row.server,
    action: row.action,
    target: row.target,
    arguments: JSON.parse(row.arguments) as unknown,
    argsDigest: row.args_digest,
    policies: JSON.parse(row.policies) as string[],
    sessionId: row.session_id,
    decidedBy: row.decided_by,
    reason: row.reason,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    decidedAt: row.decided_at,
  };
}
