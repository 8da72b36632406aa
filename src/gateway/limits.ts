import type { AuditLog } from '../audit/index.ts';
import { MandateError } from '../core/errors.ts';
import { ReplicatedView, type Store } from '../store/index.ts';

export const GATEWAY_LIMITS_CHANGED = 'gateway.limits.changed';

declare module '../store/events.ts' {
  interface ChangeTopics {
    [GATEWAY_LIMITS_CHANGED]: { id: string };
  }
}

export interface AgentLimits {
  callsPerMinute: number | null;
  maxSessions: number | null;
}

/**
 * Per-agent call rate (a token bucket refilled continuously: `callsPerMinute` tokens a minute, bursts up
 * to one minute's worth) and concurrent-session limits. Buckets live in each replica's memory, so with N
 * replicas an agent spread over all of them gets up to N times its rate; sessions are counted per replica.
 */
export class LimitService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #overrides: ReplicatedView<Map<string, AgentLimits>, typeof GATEWAY_LIMITS_CHANGED>;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #now: () => number;

  constructor(store: Store, audit: AuditLog, options: { now?: () => number } = {}) {
    this.#store = store;
    this.#audit = audit;
    this.#now = options.now ?? (() => performance.now());
    this.#overrides = new ReplicatedView({
      name: 'gateway limits',
      events: store.events,
      topics: [GATEWAY_LIMITS_CHANGED],
      load: async () => {
        const rows = await store.db.selectFrom('mcp_agent_limits').selectAll().execute();
        // A new set of limits starts every bucket afresh.
        this.#buckets.clear();
        return new Map(rows.map((row) => [row.identity_id, { callsPerMinute: row.calls_per_minute, maxSessions: row.max_sessions }]));
      },
      // Limits are served from the last load while the store is away, as they always were.
      initial: new Map(),
    });
  }

  load(): Promise<void> {
    return this.#overrides.reload();
  }

  #own(identityId: string): AgentLimits | undefined {
    return this.#overrides.last()?.get(identityId);
  }

  /** The agent's own limits, or the defaults. */
  effective(identityId: string, defaults: AgentLimits): AgentLimits {
    const own = this.#own(identityId);
    return { callsPerMinute: own?.callsPerMinute ?? defaults.callsPerMinute, maxSessions: own?.maxSessions ?? defaults.maxSessions };
  }

  own(identityId: string): AgentLimits | undefined {
    return this.#own(identityId);
  }

  /** Takes one call from the agent's bucket; false when the rate is exhausted. */
  tryCall(identityId: string, callsPerMinute: number | null): boolean {
    if (callsPerMinute === null) return true;
    const now = this.#now();
    const bucket = this.#buckets.get(identityId) ?? { tokens: callsPerMinute, at: now };
    bucket.tokens = Math.min(callsPerMinute, bucket.tokens + ((now - bucket.at) / 60_000) * callsPerMinute);
    bucket.at = now;
    this.#buckets.set(identityId, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  async set(identityId: string, limits: AgentLimits, actor: string): Promise<AgentLimits> {
    await this.#store.transaction(async (tx) => {
      const identity = await tx.db.selectFrom('identities').select('id').where('id', '=', identityId).executeTakeFirst();
      if (!identity) throw new MandateError('IDENTITY_NOT_FOUND', `identity ${identityId} not found`, 404, { id: identityId });
      await tx.db.deleteFrom('mcp_agent_limits').where('identity_id', '=', identityId).execute();
      await tx.db.insertInto('mcp_agent_limits').values({ identity_id: identityId, calls_per_minute: limits.callsPerMinute, max_sessions: limits.maxSessions, updated_at: new Date().toISOString() }).execute();
      await this.#audit.appendIn(tx, { actor, action: 'mcp.limits.set', target: identityId, outcome: 'success', details: { ...limits } });
      tx.publish(GATEWAY_LIMITS_CHANGED, { id: identityId });
    });
    // The commit's change event has reloaded the view already (read-your-writes); this covers a reload that failed.
    this.#overrides.last()?.set(identityId, limits);
    this.#buckets.delete(identityId);
    return limits;
  }
}
