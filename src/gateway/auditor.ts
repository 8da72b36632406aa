import type { Logger } from 'pino';
import type { AuditInput, AuditLog } from '../audit/index.ts';
import { MandateError } from '../core/errors.ts';
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
  /** For a decided call, how long deciding took (an approval's wait included); otherwise the whole request. */
  latencyMs: number;
  /** What the upstream answered (initialize, session close); a forwarded call's answer is in its outcome record. */
  upstreamStatus?: number;
  /** tools/list: how many tools the upstream listed and how many the caller saw. */
  listed?: { upstream: number; shown: number };
}

/** What became of a forwarded call: the second record, after the (durable) decision record. */
export interface CallOutcome {
  latencyMs: number;
  upstreamStatus?: number;
  result: 'ok' | 'error' | 'incomplete';
  /** Why the call did not complete: `upstream_failed`, `kill_switch`, `audit_unavailable`. */
  reason?: string;
}

/**
 * Writes the gateway's audit records. An allowed call that is forwarded gets two: its decision
 * (`mcp.<method>`, outcome `allow`), appended at once and awaited by the proxy, so nothing reaches an
 * upstream before the record of its decision is durable (concurrent calls share the group commit); and
 * its outcome (`mcp.<method>.result`, linked by the decision's `seq`), which, like every other record
 * (refusals, lists, sessions), is collected for a short window and not awaited. A failing audit log
 * trips `healthy` and the gateway then refuses calls (fail closed) until appends succeed again.
 */
export class GatewayAuditor {
  readonly #audit: AuditLog;
  readonly #logger: Logger;
  readonly #windowMs: number;
  #failing = false;
  #queue: AuditInput[] = [];
  #timer: NodeJS.Timeout | undefined;

  /**
   * `windowMs`: records that nothing waits for are collected for this long and handed to the audit log
   * together, so one group commit (one fsync) carries many calls instead of one per call.
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
    this.#enqueue(callInput(r));
  }

  /**
   * The decision record of an allowed call about to be forwarded, appended now (not after a window: the
   * call waits for it) and resolved with its `seq` once durable. Throws STORE_UNAVAILABLE (logged here)
   * when it cannot be written: the caller must then not forward the call.
   */
  async decided(r: CallRecord): Promise<number> {
    // Records waiting for their window (earlier calls' outcomes) ride along in this group commit
    // instead of costing a commit of their own that this call's record could queue behind.
    if (this.#queue.length > 0) void this.flush();
    try {
      const { seq } = await this.#audit.append(callInput(r));
      this.#failing = false;
      return seq;
    } catch (error) {
      this.#failed(error);
      throw new MandateError('STORE_UNAVAILABLE', 'the audit log is unavailable: the call was not forwarded', 503);
    }
  }

  /** The outcome of a call whose decision record is durable at `decisionSeq`; not awaited. */
  outcome(r: Omit<CallRecord, 'latencyMs'>, decisionSeq: number, o: CallOutcome): void {
    this.#enqueue({
      actor: actorOf(r.caller),
      action: `mcp.${r.method}.result`,
      target: r.target ?? r.server,
      outcome: o.result,
      details: {
        decision: decisionSeq,
        server: r.server,
        session: r.sessionId,
        agent: r.caller.identityId,
        ...(r.argsDigest !== undefined && { argsDigest: r.argsDigest }),
        latencyMs: Math.round(o.latencyMs * 1000) / 1000,
        ...(o.upstreamStatus !== undefined && { upstreamStatus: o.upstreamStatus }),
        ...(o.reason !== undefined && { reason: o.reason }),
      },
    });
  }

  /** Hands everything collected to the audit log now (group-committed together). */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    this.#queue = [];
    return Promise.all(batch.map((input) => this.#append(input))).then(() => undefined);
  }

  #enqueue(input: AuditInput): void {
    this.#queue.push(input);
    if (this.#queue.length >= 500) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#windowMs);
  }

  /** Never rejects: a failure is logged and trips `healthy`. */
  #append(input: AuditInput): Promise<void> {
    return this.#audit.append(input).then(
      () => {
        this.#failing = false;
      },
      (error: unknown) => this.#failed(error),
    );
  }

  #failed(error: unknown): void {
    this.#failing = true;
    this.#logger.error({ err: error }, 'gateway audit append failed: refusing calls until it recovers');
  }
}

function actorOf(caller: GatewayCaller): string {
  return `${caller.identityId.startsWith('wkl_') ? 'workload' : 'agent'}:${caller.identityId}`;
}

/** A request's record: its decision, or for undecided requests what was done. */
function callInput(r: CallRecord): AuditInput {
  return {
    actor: actorOf(r.caller),
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
      ...(r.listed !== undefined && { listed: r.listed }),
    },
  };
}
