/**
 * Decisions with Cedar semantics: forbid overrides permit, default deny, a policy whose condition
 * errors is skipped and reported. Only policies in the index buckets matching the request's principal,
 * action and resource (and their ancestors) are evaluated.
 */
import type { AttributeRead, Env } from './compile.ts';
import { contextFromJson } from './entities.ts';
import type { EntityLookup } from './entities.ts';
import { EvaluationError } from './errors.ts';
import { runTerms } from './terms.ts';
import { uidFromJson } from './json-value.ts';
import type { EntityUidJson } from './json-value.ts';
import type { ActionLevel, CompiledPolicy, CompiledPolicySet, Scope, ScopeLevel } from './policy-set.ts';
import { CedarRecord, EntityUid } from './values.ts';

export interface AuthorizationRequest {
  principal: EntityUidJson | EntityUid;
  action: EntityUidJson | EntityUid;
  resource: EntityUidJson | EntityUid;
  /** A JSON record in cedar-wasm's value form, or an already converted record. */
  context?: Record<string, unknown> | CedarRecord;
}

export interface PolicyError {
  policyId: string;
  message: string;
}

export interface Decision {
  decision: 'allow' | 'deny';
  /** The determining policies: satisfied forbids if any, else satisfied permits (file order). */
  reasons: string[];
  errors: PolicyError[];
  /** Explain mode only: what each determining policy read, in `reasons` order. */
  explanation?: { policyId: string; reads: AttributeRead[] }[];
}

export interface AuthorizeOptions {
  /** Also report the attributes each determining policy read. */
  explain?: boolean;
}

const EMPTY: ReadonlySet<string> = new Set();
const EMPTY_CONTEXT = new CedarRecord(new Map());

function uidOf(u: EntityUidJson | EntityUid, where: string): EntityUid {
  return u instanceof EntityUid ? u : uidFromJson(u, where);
}

function inScope(s: Scope, u: EntityUid, anc: ReadonlySet<string>): boolean {
  switch (s.kind) {
    case 'all':
      return true;
    case 'eq':
      return u.key === s.key;
    case 'in':
      return u.key === s.key || anc.has(s.key);
    case 'is':
      return u.type === s.type;
    case 'isIn':
      return u.type === s.type && (u.key === s.key || anc.has(s.key));
  }
}

/** The entries of one index level that can match entity `u` (with ancestors `anc`). */
function collect<T>(lv: ScopeLevel<T>, u: EntityUid, anc: ReadonlySet<string>, out: T[]): void {
  let x = lv.eq.get(u.key);
  if (x !== undefined) out.push(x);
  if (lv.inn.size > 0) {
    x = lv.inn.get(u.key);
    if (x !== undefined) out.push(x);
    for (const k of anc) {
      x = lv.inn.get(k);
      if (x !== undefined) out.push(x);
    }
  }
  x = lv.is.get(u.type);
  if (x !== undefined) out.push(x);
  if (lv.all !== undefined) out.push(lv.all);
}

function byOrder(a: CompiledPolicy, b: CompiledPolicy): number {
  return a.order - b.order;
}

function dedupeReads(reads: AttributeRead[]): AttributeRead[] {
  const seen = new Set<string>();
  return reads.filter((r) => {
    const k = JSON.stringify(r);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function authorize(set: CompiledPolicySet, entities: EntityLookup, request: AuthorizationRequest, options: AuthorizeOptions = {}): Decision {
  const principal = uidOf(request.principal, 'principal');
  const action = uidOf(request.action, 'action');
  const resource = uidOf(request.resource, 'resource');
  const ctx = request.context;
  const context = ctx === undefined ? EMPTY_CONTEXT : ctx instanceof CedarRecord ? ctx : contextFromJson(ctx);
  const explain = options.explain === true;
  const principalData = entities.get(principal.key);
  const resourceData = entities.get(resource.key);
  const env: Env = { principal, action, resource, context, entities, principalData, resourceData, trace: null };

  const pAnc = principalData?.ancestors ?? EMPTY;
  const aAnc = entities.get(action.key)?.ancestors ?? EMPTY;
  const rAnc = resourceData?.ancestors ?? EMPTY;

  const ix = set.index;
  const byResource: ScopeLevel<ActionLevel>[] = [];
  collect(ix.root, principal, pAnc, byResource);
  const byAction: ActionLevel[] = [];
  for (const lv of byResource) collect(lv, resource, rAnc, byAction);
  const buckets: CompiledPolicy[][] = [];
  // Only quote-free uids are in `triples` (see PolicyIndex), so a request with a `"` in an id cannot
  // match any of them.
  if (ix.triples.size > 0 && !principal.id.includes('"') && !resource.id.includes('"') && !action.id.includes('"')) {
    const t = ix.triples.get(principal.key + resource.key + action.key);
    if (t !== undefined) buckets.push(t);
  }
  for (const lv of byAction) {
    let b = lv.eq.get(action.key);
    if (b !== undefined) buckets.push(b);
    if (lv.inn.size > 0) {
      b = lv.inn.get(action.key);
      if (b !== undefined) buckets.push(b);
      for (const k of aAnc) {
        b = lv.inn.get(k);
        if (b !== undefined) buckets.push(b);
      }
    }
    if (lv.all !== undefined) buckets.push(lv.all);
  }

  const epoch = ++ix.epoch;
  let permits: CompiledPolicy[] | null = null;
  let forbids: CompiledPolicy[] | null = null;
  let errored: { p: CompiledPolicy; message: string }[] | null = null;
  const traces = explain ? new Map<CompiledPolicy, AttributeRead[]>() : null;

  for (const bucket of buckets) {
    for (const p of bucket) {
      if (p.stamp === epoch) continue;
      p.stamp = epoch;
      // The index already matched the scope, except the type of `is T in E`.
      if (p.checkScope && (!inScope(p.principal, principal, pAnc) || !inScope(p.resource, resource, rAnc))) continue;
      let satisfied = true;
      if (p.condition !== null) {
        if (traces !== null) env.trace = [];
        try {
          satisfied = p.terms !== null ? runTerms(env, p.terms) : p.condition(env);
        } catch (err) {
          // Any failure — including an unexpected one — skips the policy (fail closed for permits).
          const message = err instanceof EvaluationError ? err.message : `internal error: ${String((err as Error)?.message ?? err)}`;
          (errored ??= []).push({ p, message });
          satisfied = false;
        }
        if (traces !== null && satisfied) traces.set(p, env.trace ?? []);
      } else if (traces !== null) traces.set(p, []);
      if (!satisfied) continue;
      if (p.effect === 'forbid') (forbids ??= []).push(p);
      else (permits ??= []).push(p);
    }
  }

  const determining = forbids ?? permits ?? [];
  if (determining.length > 1) determining.sort(byOrder);
  if (errored !== null && errored.length > 1) errored.sort((x, y) => byOrder(x.p, y.p));
  const decision: Decision = {
    decision: forbids === null && permits !== null ? 'allow' : 'deny',
    reasons: determining.map((p) => p.id),
    errors: errored === null ? [] : errored.map((e) => ({ policyId: e.p.id, message: e.message })),
  };
  if (traces !== null) {
    decision.explanation = determining.map((p) => ({ policyId: p.id, reads: dedupeReads(traces.get(p) ?? []) }));
  }
  return decision;
}
