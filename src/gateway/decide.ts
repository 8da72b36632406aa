import { isIP } from 'node:net';
import type { GatewayCaller, McpAction } from './types.ts';

/** The slice of the policy decision point (src/pdp PdpService) the gateway uses. */
export interface PolicyPoint {
  decide(
    request: { principal: { type: string; id: string }; action: { type: string; id: string }; resource: { type: string; id: string }; context: Record<string, unknown> },
    options?: { overrides?: { uid: { type: string; id: string }; attrs?: Record<string, unknown>; parents?: { type: string; id: string }[] }[] },
  ): { decision: 'allow' | 'deny'; policyDecision: 'allow' | 'deny'; reasons: string[]; errors: { policyId: string; message: string }[]; mode: string; policyVersion: number };
  readonly policySet: { get(id: string): { effect: 'permit' | 'forbid'; annotations: Readonly<Record<string, string>> } | undefined };
}

export interface DecisionTarget {
  action: McpAction;
  server: string;
  /** Tool or prompt name, or resource URI. */
  name: string;
  labels: string[];
  /** Entities the store does not hold (resources, prompts, tools discovery has not seen yet). */
  known: boolean;
  settings?: Record<string, string | number | boolean>;
}

export interface SessionView {
  id: string;
  labels: ReadonlySet<string>;
  calls: number;
}

export interface GatewayDecision {
  allowed: boolean;
  /** What the policies said (differs from `allowed` in log-only mode). */
  policyDecision: 'allow' | 'deny';
  /** Determining policies, of the agent's decision then (prefixed `user:`) the user's. */
  policies: string[];
  errors: { policyId: string; message: string }[];
  /** `@approval(...)` values of the determining permits: the call waits for a human. */
  approvals: string[];
  policyVersion: number;
  /** Which side refused: the agent itself, or the user it acts for (intersection). */
  deniedBy?: 'agent' | 'user';
}

const RESOURCE_TYPE: Record<McpAction, string> = { 'tools/call': 'Tool', 'resources/read': 'Resource', 'prompts/get': 'Prompt' };

export function principalOf(identityId: string): { type: string; id: string } {
  return { type: identityId.startsWith('wkl_') ? 'Workload' : 'Agent', id: identityId };
}

export function resourceUid(target: DecisionTarget): { type: string; id: string } {
  return { type: RESOURCE_TYPE[target.action], id: `${target.server}/${target.name}` };
}

/**
 * Decides one call for the agent and, when it acts for a user, for the user too: both must allow
 * (the intersection of what each may do). Default deny and "a policy error denies" come from the
 * engine: an erroring permit is skipped, so it cannot allow.
 */
export function decideCall(pdp: PolicyPoint, caller: GatewayCaller, target: DecisionTarget, args: unknown, session: SessionView, meta: { now: Date; clientAddress: string | undefined }): GatewayDecision {
  const context = buildContext(caller, args, session, meta);
  const resource = resourceUid(target);
  const action = { type: 'Action', id: target.action };
  const overrides = target.known ? undefined : [entityOverride(target)];
  const options = overrides ? { overrides } : {};
  const agent = pdp.decide({ principal: principalOf(caller.identityId), action, resource, context }, options);
  const approvals = new Set<string>();
  const collect = (reasons: string[]) => {
    for (const id of reasons) {
      const policy = pdp.policySet.get(id);
      const approval = policy?.effect === 'permit' ? policy.annotations.approval : undefined;
      if (approval !== undefined) approvals.add(approval || 'owner');
    }
  };
  if (agent.decision === 'allow' && agent.policyDecision === 'allow') collect(agent.reasons);
  const base = { policyVersion: agent.policyVersion };
  if (agent.decision !== 'allow') {
    return { ...base, allowed: false, policyDecision: agent.policyDecision, policies: agent.reasons, errors: agent.errors, approvals: [], deniedBy: 'agent' };
  }
  if (caller.userId === null) {
    return { ...base, allowed: true, policyDecision: agent.policyDecision, policies: agent.reasons, errors: agent.errors, approvals: [...approvals] };
  }
  const user = pdp.decide({ principal: { type: 'Human', id: caller.userId }, action, resource, context }, options);
  if (user.decision === 'allow' && user.policyDecision === 'allow') collect(user.reasons);
  const policies = [...agent.reasons, ...user.reasons.map((r) => `user:${r}`)];
  const errors = [...agent.errors, ...user.errors.map((e) => ({ ...e, policyId: `user:${e.policyId}` }))];
  const policyDecision = agent.policyDecision === 'allow' && user.policyDecision === 'allow' ? 'allow' : 'deny';
  if (user.decision !== 'allow') return { ...base, allowed: false, policyDecision, policies, errors, approvals: [], deniedBy: 'user' };
  return { ...base, allowed: true, policyDecision, policies, errors, approvals: [...approvals] };
}

/**
 * Whether a tool belongs in the caller's tools/list: it is allowed with no arguments, or nothing forbids
 * it and a permit could not be decided without the call's arguments (an erroring permit). A tool left in
 * the list is still decided, with its real arguments, when it is called.
 */
export function mayList(pdp: PolicyPoint, caller: GatewayCaller, target: DecisionTarget, session: SessionView, meta: { now: Date; clientAddress: string | undefined }): boolean {
  const context = buildContext(caller, {}, session, meta);
  const resource = resourceUid(target);
  const action = { type: 'Action', id: target.action };
  const options = target.known ? {} : { overrides: [entityOverride(target)] };
  const listable = (principal: { type: string; id: string }) => {
    const d = pdp.decide({ principal, action, resource, context }, options);
    if (d.decision === 'allow') return true;
    const forbidden = d.reasons.some((id) => pdp.policySet.get(id)?.effect === 'forbid');
    return !forbidden && d.errors.some((e) => pdp.policySet.get(e.policyId)?.effect === 'permit');
  };
  if (!listable(principalOf(caller.identityId))) return false;
  return caller.userId === null || listable({ type: 'Human', id: caller.userId });
}

function entityOverride(target: DecisionTarget): { uid: { type: string; id: string }; attrs: Record<string, unknown>; parents: { type: string; id: string }[] } {
  const attrs: Record<string, unknown> = { server: target.server, labels: target.labels };
  if (target.action === 'resources/read') attrs.uri = target.name;
  else attrs.name = target.name;
  if (target.settings) attrs.settings = toCedarRecord(target.settings);
  return { uid: resourceUid(target), attrs, parents: [{ type: 'McpServer', id: target.server }] };
}

/** The Cedar context (docs/policies.md, "Cedar vocabulary for the gateway"), in cedar-wasm JSON value form. */
export function buildContext(caller: GatewayCaller, args: unknown, session: SessionView, meta: { now: Date; clientAddress: string | undefined }): Record<string, unknown> {
  const context: Record<string, unknown> = {
    args: toCedarRecord(args),
    chain: caller.chain.length > 0 ? caller.chain : [caller.identityId],
    session: { id: session.id, labels: [...session.labels], calls: session.calls },
    time: { __extn: { fn: 'datetime', arg: meta.now.toISOString() } },
    scopes: caller.scopes,
  };
  if (caller.userId) context.user = { __entity: { type: 'Human', id: caller.userId } };
  const address = meta.clientAddress?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (address && isIP(address)) context.clientAddress = { __extn: { fn: 'ip', arg: address } };
  return context;
}

const MAX_DEPTH = 16;

/**
 * Arguments as a Cedar value. Cedar has no null and no floats, and `__entity` / `__extn` keys would be
 * read as entity references or extension calls: an agent must not be able to smuggle `Human::"boss"`
 * into the context through a tool argument. So: nulls are dropped, non-integers become strings, and
 * keys starting with `__` are dropped.
 */
export function toCedarRecord(value: unknown): Record<string, unknown> {
  const converted = toCedar(value, 0);
  return typeof converted === 'object' && converted !== null && !Array.isArray(converted) ? (converted as Record<string, unknown>) : {};
}

function toCedar(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) return undefined;
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : String(value);
  if (Array.isArray(value)) return value.map((v) => toCedar(v, depth + 1)).filter((v) => v !== undefined);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k.startsWith('__')) continue;
      const c = toCedar(v, depth + 1);
      if (c !== undefined) out[k] = c;
    }
    return out;
  }
  return undefined;
}
