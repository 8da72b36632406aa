import { randomToken } from '../core/crypto.ts';
import type { GatewayCaller } from './types.ts';
import type { UpstreamEndpoint } from './upstream.ts';

/**
 * One agent's MCP session through the gateway. The agent sees Mandate's session id; the upstream's is
 * kept here (session ids are mapped, so an id learned by another agent is useless: sessions are bound
 * to the identity that opened them, and to the server).
 */
export class GatewaySession {
  readonly id: string;
  readonly server: string;
  /** Who called last: the token is verified on every request, and its scopes and id are what decisions and audit see. */
  caller: GatewayCaller;
  readonly ownerId: string;
  readonly endpoint: UpstreamEndpoint;
  readonly createdAt: number;
  upstreamSessionId: string | undefined;
  /**
   * The protocol version the upstream's answer to this session's `initialize` negotiated; set once, so
   * a later `initialize` in the session cannot renegotiate what the gateway lets through (batches).
   */
  protocolVersion: string | undefined;
  /** Data-flow labels of everything this session has touched (tools called, resources read). */
  readonly labels = new Set<string>();
  /** `<server>/<tool>` of every tool called in this session (per-session separation of duties). */
  readonly tools = new Set<string>();
  calls = 0;
  /** Calls waiting for a human, by JSON-RPC id: `notifications/cancelled` aborts the wait. */
  readonly waiting = new Map<string | number, AbortController>();
  lastSeen: number;
  closed = false;
  /** Aborts every upstream request of the session at once (kill switch, DELETE, expiry). */
  readonly #controller = new AbortController();

  constructor(server: string, caller: GatewayCaller, ownerId: string, endpoint: UpstreamEndpoint, now: number) {
    this.id = `mcs_${randomToken(24)}`;
    this.server = server;
    this.caller = caller;
    this.ownerId = ownerId;
    this.endpoint = endpoint;
    this.createdAt = now;
    this.lastSeen = now;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  abort(reason: string): void {
    this.#controller.abort(new Error(reason));
  }
}

export class SessionTable {
  readonly #byId = new Map<string, GatewaySession>();
  readonly #byIdentity = new Map<string, Set<GatewaySession>>();

  get size(): number {
    return this.#byId.size;
  }

  add(session: GatewaySession): void {
    this.#byId.set(session.id, session);
    let set = this.#byIdentity.get(session.caller.identityId);
    if (!set) this.#byIdentity.set(session.caller.identityId, (set = new Set()));
    set.add(session);
  }

  get(id: string): GatewaySession | undefined {
    return this.#byId.get(id);
  }

  ofIdentity(identityId: string): GatewaySession[] {
    return [...(this.#byIdentity.get(identityId) ?? [])];
  }

  countOf(identityId: string): number {
    return this.#byIdentity.get(identityId)?.size ?? 0;
  }

  all(): GatewaySession[] {
    return [...this.#byId.values()];
  }

  remove(session: GatewaySession): void {
    this.#byId.delete(session.id);
    const set = this.#byIdentity.get(session.caller.identityId);
    set?.delete(session);
    if (set && set.size === 0) this.#byIdentity.delete(session.caller.identityId);
  }
}
