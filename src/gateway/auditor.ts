import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { GatewayCaller } from './types.ts';

export interface CallRecord {
  caller: GatewayCaller;
  ownerId: string | null;
  server: string;
  sessionId: string | null;
  /** JSON-RPC method (`tools/call`, `tools/list`, `initialize`, …) or `GET`/`DELETE` for stream operations. */
  method: string;
  /** `server/tool`, `server/uri`, `server/prompt` for decided calls. */
  target: string | null;
  argsDigest?: string;
  args?: unknown;
  decision: 'allow' | 'deny';
  policyDecision?: 'allow' | 'deny';
  /** Why: a code such as `policy`, `approval_denied`, `rate_limited`, `kill_switch`. */
  reason?: string;
  policies?: string[];
  errors?: { policyId: string; message: string }[];
  policyVersion?: number;
  approvalId?: string;
  latencyMs: number;
  /** What the upstream answered: HTTP status, and `ok`/`error`/`incomplete` for the call's result. */
  upstreamStatus?: number;
  result?: 'ok' | 'error' | 'incomplete';
  /** tools/list: how many tools the upstream listed and how many the caller saw. */
  listed?: { upstream: number; shown: number };
}

/**
 * Writes one audit record per gateway request and decision. Appends are group-committed; the proxy does
 * not hold an allowed call for the disk, but a failing audit log trips `healthy` and the gateway then
 * refuses calls (fail closed) until appends succeed again.
 */
export class GatewayAuditor {
  readonly #audit: AuditLog;
  readonly #logger: Logger;
  readonly #windowMs: number;
  #failing = false;
  #queue: CallRecord[] = [];
  #timer: NodeJS.Timeout | undefined;

  /**
   * `windowMs`: records are collected for this long and handed to the audit log together, so one
   * group commit (one fsync) carries many calls instead of one per call. SQLite commits block the event
   * loop, so a commit per call would add its fsync to every other call's latency.
   */
  constructor(audit: AuditLog, logger: Logger, options: { windowMs?: number } = {}) {
    this.#audit = audit;
    this.#logger = logger;
    this.#windowMs = options.windowMs ?? 5;
  }

  get healthy(): boolean {
    return !this.#failing;
  }

  record(r: CallRecord): void {
    this.#queue.push(r);
    if (this.#queue.length >= 500) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#windowMs);
  }

  /** Hands everything collected to the audit log now (group-committed together). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    this.#queue = [];
    return Promise.all(batch.map((r) => this.#append(r))).then(() => undefined);
  }

  #append(r: CallRecord): Promise<void> {
    const actor = `${r.caller.identityId.startsWith('wkl_') ? 'workload' : 'agent'}:${r.caller.identityId}`;
    return this.#audit
      .append({
        actor,
        action: `mcp.${r.method}`,
        target: r.target ?? r.server,
        outcome: r.decision,
        details: {
          server: r.server,
          session: r.sessionId,
          agent: r.caller.identityId,
          owner: r.ownerId,
          user: r.caller.userId,
          chain: r.caller.chain,
          client: r.caller.clientId,
          token: r.caller.tokenId,
          ...(r.argsDigest !== undefined && { argsDigest: r.argsDigest, args: r.args }),
          ...(r.policyDecision !== undefined && { policyDecision: r.policyDecision }),
          ...(r.reason !== undefined && { reason: r.reason }),
          ...(r.policies !== undefined && { policies: r.policies }),
          ...(r.errors !== undefined && r.errors.length > 0 && { policyErrors: r.errors }),
          ...(r.policyVersion !== undefined && { policyVersion: r.policyVersion }),
          ...(r.approvalId !== undefined && { approvalId: r.approvalId }),
          latencyMs: Math.round(r.latencyMs * 1000) / 1000,
          ...(r.upstreamStatus !== undefined && { upstreamStatus: r.upstreamStatus }),
          ...(r.result !== undefined && { result: r.result }),
          ...(r.listed !== undefined && { listed: r.listed }),
        },
      })
      .then(
        () => {
          this.#failing = false;
        },
        (error: unknown) => {
          this.#failing = true;
          this.#logger.error({ err: error }, 'gateway audit append failed: refusing calls until it recovers');
        },
      );
  }
}
