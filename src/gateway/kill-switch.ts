import type { AuditLog } from '../audit/index.ts';
import { MandateError } from '../core/errors.ts';
import type { IdentityService } from '../identity/index.ts';
import type { Store } from '../store/index.ts';

export type KillSelector =
  | { agentId: string }
  | { ownerId: string }
  | { tag: string }
  | { modelProvider: string; model?: string | undefined }
  | { all: true };

/**
 * The kill switch: suspends every agent and workload the selector matches, in one transaction. Suspension
 * goes through the identity registry, so its `identity.changed` event reaches every replica, where the
 * gateway closes the identity's sessions, aborts its in-flight calls, cancels its pending approvals, and
 * refuses new calls (the token verifier refuses suspended identities too). It also sets each identity's
 * tokens-not-before: after a resume, the tokens issued before the kill stay refused.
 */
export class KillSwitch {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #identity: IdentityService;

  constructor(store: Store, audit: AuditLog, identity: IdentityService) {
    this.#store = store;
    this.#audit = audit;
    this.#identity = identity;
  }

  async kill(selector: KillSelector, reason: string, actor: string): Promise<{ suspended: string[] }> {
    let query = this.#store.db.selectFrom('identities').select(['id', 'tags']).where('status', '=', 'active');
    if ('agentId' in selector) query = query.where('id', '=', selector.agentId);
    else if ('ownerId' in selector) query = query.where('owner_id', '=', selector.ownerId);
    else if ('modelProvider' in selector) {
      query = query.where('model_provider', '=', selector.modelProvider);
      if (selector.model !== undefined) query = query.where('model', '=', selector.model);
    } else if (!('tag' in selector) && !('all' in selector && selector.all === true)) {
      throw new MandateError('KILL_SELECTOR_INVALID', 'name one of agentId, ownerId, tag, modelProvider or all', 400);
    }
    let rows = await query.execute();
    if ('tag' in selector) rows = rows.filter((r) => (JSON.parse(r.tags) as string[]).includes(selector.tag));
    if ('agentId' in selector && rows.length === 0) {
      const exists = await this.#store.db.selectFrom('identities').select('status').where('id', '=', selector.agentId).executeTakeFirst();
      if (!exists) throw new MandateError('IDENTITY_NOT_FOUND', `identity ${selector.agentId} not found`, 404, { id: selector.agentId });
    }
    // One transaction for the whole kill: every identity it covers now is suspended, with its
    // tokens-not-before (no token issued before the kill comes back after a resume), or none is.
    const suspended = await this.#identity.suspendMany(rows.map((r) => r.id), `kill switch: ${reason}`, actor);
    await this.#audit.append({ actor, action: 'mcp.kill', target: null, outcome: 'success', details: { selector, reason, suspended } });
    return { suspended };
  }
}
