/**
 * A compiled policy set: parsed policies (ids `policyN` in file order), their closures, templates and
 * template-linked policies, and a scope index so a decision only touches policies that can apply.
 */
import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../core/errors.ts';
import { Compiler, compileConditions } from './compile.ts';
import type { Env } from './compile.ts';
import { compileTerms } from './terms.ts';
import type { Terms } from './terms.ts';
import { uidFromJson } from './json-value.ts';
import type { EntityUidJson } from './json-value.ts';
import { parsePolicies } from './parse.ts';
import type { ParsedPolicy } from './parse.ts';

export type Scope =
  | { readonly kind: 'all' }
  | { readonly kind: 'eq'; readonly key: string }
  | { readonly kind: 'in'; readonly key: string }
  | { readonly kind: 'is'; readonly type: string }
  | { readonly kind: 'isIn'; readonly type: string; readonly key: string };

export type ActionScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'eq'; readonly key: string }
  | { readonly kind: 'in'; readonly keys: readonly string[] };

/** What callers see of a policy. */
export interface PolicyInfo {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** Annotations such as `@approval("owner")`, for callers like the gateway. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Cedar's JSON policy form (for a linked policy: with the slots filled in). */
  readonly est: PolicyJson;
  /** Where the policy (or, for a link, its template) starts in the source text. */
  readonly line: number;
  readonly column: number;
  /** For a template-linked policy: the template's id. */
  readonly templateId?: string;
}

export interface CompiledPolicy extends PolicyInfo {
  /** Evaluation order for stable output: file order, then links in the order given. */
  readonly order: number;
  readonly principal: Scope;
  readonly action: ActionScope;
  readonly resource: Scope;
  readonly condition: ((e: Env) => boolean) | null;
  /** The same conditions as flat terms when they are simple enough (see `compileTerms`). */
  readonly terms: Terms | null;
  /**
   * Whether a policy found through the index still needs its scope checked: only `is T in E` (indexed
   * by `E`, so the type is unchecked).
   */
  readonly checkScope: boolean;
  /** Per-decision visit mark (a policy can sit in several action buckets). */
  stamp: number;
}

export interface TemplateLink {
  templateId: string;
  newId: string;
  /** Slot values: `{"?principal": {type, id}, "?resource": {type, id}}`. */
  values: Readonly<Record<string, EntityUidJson>>;
}

type Constraint = { op: string; entity?: EntityUidJson; entities?: EntityUidJson[]; slot?: string; entity_type?: string; in?: { entity?: EntityUidJson; slot?: string } };

function keyOf(u: EntityUidJson | undefined, where: string): string {
  if (u === undefined) throw new MandateError('POLICY_COMPILE', `${where}: unlinked template slot`, 400);
  return uidFromJson(u, where).key;
}

function scopeOf(c: Constraint, where: string): Scope {
  switch (c.op) {
    case 'All':
      return { kind: 'all' };
    case '==':
      return { kind: 'eq', key: keyOf(c.entity, where) };
    case 'in':
      return { kind: 'in', key: keyOf(c.entity, where) };
    case 'is':
      if (c.in === undefined) return { kind: 'is', type: c.entity_type as string };
      return { kind: 'isIn', type: c.entity_type as string, key: keyOf(c.in.entity, where) };
  }
  throw new MandateError('POLICY_COMPILE', `${where}: unknown scope operator ${c.op}`, 400);
}

function actionScopeOf(c: Constraint, where: string): ActionScope {
  if (c.op === 'All') return { kind: 'all' };
  if (c.op === '==') return { kind: 'eq', key: keyOf(c.entity, where) };
  if (c.entities !== undefined) return { kind: 'in', keys: c.entities.map((u, i) => keyOf(u, `${where}[${i}]`)) };
  return { kind: 'in', keys: [keyOf(c.entity, where)] };
}

/** Fills template slots in the scope constraints (and any `Slot` expression). */
function linkEst(est: PolicyJson, values: Readonly<Record<string, EntityUidJson>>): PolicyJson {
  const uidJson = (slot: string): { type: string; id: string } => {
    const v = values[slot];
    if (v === undefined) throw new MandateError('POLICY_LINK', `no value for slot ${slot}`, 400, { slot });
    const u = uidFromJson(v, slot);
    return { type: u.type, id: u.id };
  };
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (typeof x !== 'object' || x === null) return x;
    const o = x as Record<string, unknown>;
    if (typeof o.Slot === 'string' && Object.keys(o).length === 1) return { Value: { __entity: uidJson(o.Slot) } };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === 'slot' && typeof v === 'string') out.entity = uidJson(v);
      else out[k] = walk(v);
    }
    return out;
  };
  return walk(est) as PolicyJson;
}

function compilePolicy(
  p: { id: string; est: PolicyJson; annotations: Readonly<Record<string, string>>; line: number; column: number; templateId?: string },
  order: number,
  bigLiterals: ReadonlyMap<number, bigint>,
): CompiledPolicy {
  const est = p.est;
  const compiler = new Compiler(bigLiterals);
  const principal = scopeOf(est.principal as Constraint, `${p.id} principal`);
  const resource = scopeOf(est.resource as Constraint, `${p.id} resource`);
  const base = {
    id: p.id,
    effect: est.effect,
    annotations: p.annotations,
    est,
    line: p.line,
    column: p.column,
    order,
    principal,
    action: actionScopeOf(est.action as Constraint, `${p.id} action`),
    resource,
    condition: compileConditions(est, compiler),
    // Stand-ins for large literals are safe integers the flat terms would take at face value.
    terms: bigLiterals.size === 0 ? compileTerms(est) : null,
    checkScope: principal.kind === 'isIn' || resource.kind === 'isIn',
    stamp: 0,
  };
  return p.templateId === undefined ? base : { ...base, templateId: p.templateId };
}

/** One level of the scope index: entries keyed by an `==` entity, an `in` entity, an `is` type, or none. */
export interface ScopeLevel<T> {
  readonly eq: Map<string, T>;
  /** Keyed by the `in` entity (also `is T in E`, whose type is checked per policy). */
  readonly inn: Map<string, T>;
  readonly is: Map<string, T>;
  all: T | undefined;
}

export interface ActionLevel {
  readonly eq: Map<string, CompiledPolicy[]>;
  readonly inn: Map<string, CompiledPolicy[]>;
  all: CompiledPolicy[] | undefined;
}

function level<T>(): ScopeLevel<T> {
  return { eq: new Map(), inn: new Map(), is: new Map(), all: undefined };
}

function slot<T>(lv: ScopeLevel<T>, s: Scope, make: () => T): T {
  const m = s.kind === 'eq' ? lv.eq : s.kind === 'in' || s.kind === 'isIn' ? lv.inn : s.kind === 'is' ? lv.is : undefined;
  if (m === undefined) return (lv.all ??= make());
  const k = s.kind === 'is' ? s.type : (s as { key: string }).key;
  let t = m.get(k);
  if (t === undefined) m.set(k, (t = make()));
  return t;
}

/** Whether the id inside a `Type::"id"` key has no `"` of its own. */
function quoteFree(key: string): boolean {
  return key.indexOf('"', key.indexOf('"') + 1) === key.length - 1;
}

/**
 * Policies indexed by principal scope, then resource scope, then action scope, so a decision visits only
 * policies whose scope matches (up to the type in `is T in E`): the work per decision depends on how
 * many policies apply, not on how many exist.
 */
export class PolicyIndex {
  readonly root: ScopeLevel<ScopeLevel<ActionLevel>> = level();
  /**
   * `principal == P, action == A, resource == R` policies (the bulk of per-agent grants), keyed by the
   * three uids: one hash lookup instead of a walk through three levels, which matters once the index
   * outgrows the CPU caches. Only uids without `"` in their id, so that plain concatenation is
   * unambiguous (a type name never contains `"`).
   */
  readonly triples = new Map<string, CompiledPolicy[]>();
  epoch = 0;

  constructor(policies: readonly CompiledPolicy[]) {
    for (const p of policies) {
      if (p.principal.kind === 'eq' && p.resource.kind === 'eq' && p.action.kind === 'eq' && quoteFree(p.principal.key) && quoteFree(p.action.key) && quoteFree(p.resource.key)) {
        const k = p.principal.key + p.resource.key + p.action.key;
        const list = this.triples.get(k);
        if (list === undefined) this.triples.set(k, [p]);
        else list.push(p);
        continue;
      }
      const byResource = slot(this.root, p.principal, () => level<ActionLevel>());
      const byAction = slot(byResource, p.resource, (): ActionLevel => ({ eq: new Map(), inn: new Map(), all: undefined }));
      const a = p.action;
      const add = (m: Map<string, CompiledPolicy[]>, k: string): void => {
        const list = m.get(k);
        if (list === undefined) m.set(k, [p]);
        else list.push(p);
      };
      if (a.kind === 'all') (byAction.all ??= []).push(p);
      else if (a.kind === 'eq') add(byAction.eq, a.key);
      else for (const k of new Set(a.keys)) add(byAction.inn, k);
    }
  }
}

export class CompiledPolicySet {
  /** Policies that take part in decisions: static ones in file order, then template links. */
  readonly policies: readonly CompiledPolicy[];
  /** Templates (by id); they never decide anything until linked. */
  readonly templates: ReadonlyMap<string, ParsedPolicy>;
  readonly index: PolicyIndex;
  readonly #byId: ReadonlyMap<string, CompiledPolicy>;

  constructor(policies: readonly CompiledPolicy[], templates: ReadonlyMap<string, ParsedPolicy>) {
    this.policies = policies;
    this.templates = templates;
    this.index = new PolicyIndex(policies);
    this.#byId = new Map(policies.map((p) => [p.id, p]));
  }

  get(id: string): CompiledPolicy | undefined {
    return this.#byId.get(id);
  }

  /** A new set with these template links added (this one is unchanged). */
  link(links: readonly TemplateLink[]): CompiledPolicySet {
    const added: CompiledPolicy[] = [];
    const ids = new Set([...this.#byId.keys(), ...this.templates.keys()]);
    let order = this.policies.length;
    for (const l of links) {
      const t = this.templates.get(l.templateId);
      if (t === undefined) throw new MandateError('POLICY_LINK', `no template with id ${l.templateId}`, 400, { templateId: l.templateId });
      if (ids.has(l.newId)) throw new MandateError('POLICY_LINK', `policy id ${l.newId} is already used`, 400, { policyId: l.newId });
      ids.add(l.newId);
      const est = linkEst(t.est, l.values);
      added.push(
        compilePolicy(
          { id: l.newId, est, annotations: t.annotations, line: t.line, column: t.column, templateId: t.id },
          order++,
          t.chunk.bigLiterals,
        ),
      );
    }
    return new CompiledPolicySet([...this.policies, ...added], this.templates);
  }
}

export interface CompileOptions {
  /** Template links to apply right away. */
  links?: readonly TemplateLink[];
}

/** Parses (cedar-wasm) and compiles a Cedar policy set. Throws `POLICY_PARSE` on syntax errors. */
export function compilePolicySet(text: string, options: CompileOptions = {}): CompiledPolicySet {
  const parsed = parsePolicies(text);
  const policies: CompiledPolicy[] = [];
  const templates = new Map<string, ParsedPolicy>();
  for (const p of parsed) {
    if (p.isTemplate) templates.set(p.id, p);
    else policies.push(compilePolicy(p, p.index, p.chunk.bigLiterals));
  }
  const set = new CompiledPolicySet(policies, templates);
  return options.links && options.links.length > 0 ? set.link(options.links) : set;
}

