/**
 * Compiles a policy's JSON form (EST) to JavaScript closures. Each expression node becomes one closure
 * `(env) => Value`; errors are thrown as `EvaluationError` and make the policy "errored" (skipped).
 * Semantics follow Cedar's evaluator: both operands of a binary operator are evaluated before type
 * checks, `&&`/`||` short-circuit and require booleans, equality across types is `false`.
 */
import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../core/errors.ts';
import type { EntityData, EntityLookup } from './entities.ts';
import { EvaluationError } from './errors.ts';
import { extensionFunction, isExtensionFunction } from './extensions.ts';
import { valueFromJson } from './json-value.ts';
import { compileLike } from './like.ts';
import type { PatternElem } from './like.ts';
import { addLong, mulLong, negLong, subLong } from './long.ts';
import { CedarRecord, CedarSet, DateTime, Duration, EntityUid, typeName, valueEquals } from './values.ts';
import type { Value } from './values.ts';

/** One attribute (or tag) read by a policy, reported by explain mode. */
export type AttributeRead =
  | { on: 'entity'; entity: { type: string; id: string }; path: string[] }
  | { on: 'tag'; entity: { type: string; id: string }; tag: string }
  | { on: 'context'; path: string[] };

export interface Env {
  principal: EntityUid;
  action: EntityUid;
  resource: EntityUid;
  context: CedarRecord;
  entities: EntityLookup;
  /** The principal's and resource's entity data (looked up once per decision), if they exist. */
  principalData: EntityData | undefined;
  resourceData: EntityData | undefined;
  /** Non-null only in explain mode. */
  trace: AttributeRead[] | null;
}

export type Fn = (e: Env) => Value;
export type Expr = Record<string, unknown>;

/**
 * The internalized (V8 string table) copy of a string. Names and literals from cedar-wasm's JSON are
 * fresh strings, while JSON.parse internalizes object keys and short values; with both sides
 * internalized, attribute lookups and string equality compare pointers instead of reading contents,
 * which saves cache misses once there are many policies.
 */
export function intern(s: string): string {
  // A null-prototype object is a dictionary in V8: adding a key internalizes it without creating a
  // hidden-class transition per distinct string.
  const o = Object.create(null) as Record<string, number>;
  o[s] = 1;
  return Object.keys(o)[0] ?? s;
}

const constants = new WeakMap<Fn, Value>();
function constant(v: Value): Fn {
  if (typeof v === 'string') v = intern(v);
  const f: Fn = () => v;
  constants.set(f, v);
  return f;
}

export function typeError(expected: string, v: Value): EvaluationError {
  return new EvaluationError(`type error: expected ${expected}, got ${typeName(v)}`);
}

function asBool(v: Value): boolean {
  if (typeof v !== 'boolean') throw typeError('bool', v);
  return v;
}

function isLong(v: Value): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

function entityJson(u: EntityUid): { type: string; id: string } {
  return { type: u.type, id: u.id };
}

function getEntity(env: Env, uid: EntityUid): NonNullable<ReturnType<EntityLookup['get']>> {
  const d = env.entities.get(uid.key);
  if (d === undefined) throw new EvaluationError(`entity \`${uid.key}\` does not exist`);
  return d;
}

/** `in`: entity hierarchy membership against an entity or a set of entities. */
export function evalIn(env: Env, l: Value, r: Value): boolean {
  if (!(l instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', l);
  if (r instanceof EntityUid) {
    if (l.key === r.key) return true;
    const d = env.entities.get(l.key);
    return d !== undefined && d.ancestors.has(r.key);
  }
  if (r instanceof CedarSet) {
    for (const item of r.items) if (!(item instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', item);
    const anc = env.entities.get(l.key)?.ancestors;
    for (const item of r.items) {
      const k = (item as EntityUid).key;
      if (k === l.key || (anc !== undefined && anc.has(k))) return true;
    }
    return false;
  }
  throw typeError('one of [set, (entity of type `any_entity_type`)]', r);
}

export function compare(a: Value, b: Value, strict: boolean): boolean {
  if (isLong(a) && isLong(b)) return strict ? a < b : a <= b;
  if ((a instanceof DateTime && b instanceof DateTime) || (a instanceof Duration && b instanceof Duration)) {
    return strict ? a.ms < b.ms : a.ms <= b.ms;
  }
  if (isLong(a)) throw typeError('long', b);
  if (isLong(b)) throw typeError('long', a);
  if (a instanceof DateTime || a instanceof Duration) throw typeError(typeName(a), b);
  if (b instanceof DateTime || b instanceof Duration) throw typeError(typeName(b), a);
  throw typeError('one of [long, datetime, duration]', a);
}

function hasAttr(env: Env, v: Value, attr: string): boolean {
  if (v instanceof CedarRecord) return v.map.has(attr);
  if (v instanceof EntityUid) {
    const d = env.entities.get(v.key);
    if (env.trace !== null) env.trace.push({ on: 'entity', entity: entityJson(v), path: [attr] });
    return d !== undefined && d.attrs.has(attr);
  }
  throw typeError('one of [record, (entity of type `any_entity_type`)]', v);
}

function getAttr(env: Env, v: Value, attr: string): Value {
  if (v instanceof EntityUid) {
    const d = getEntity(env, v);
    const a = d.attrs.get(attr);
    if (a === undefined) throw new EvaluationError(`\`${v.key}\` does not have the attribute \`${attr}\``);
    return a;
  }
  if (v instanceof CedarRecord) {
    const a = v.map.get(attr);
    if (a === undefined) throw new EvaluationError(`record does not have the attribute \`${attr}\``);
    return a;
  }
  throw typeError('one of [record, (entity of type `any_entity_type`)]', v);
}

/** Closures that are a single attribute read on a variable, so callers can inline the read. */
export interface Direct {
  which: 0 | 1 | 2;
  attr: string;
  attrs: string[];
}
const directs = new WeakMap<Fn, Direct>();

/** `context.attr` (0), `principal.attr` (1) or `resource.attr` (2). */
export function directGet(e: Env, which: 0 | 1 | 2, attr: string, attrs: string[]): Value {
  if (which === 0) {
    if (e.trace !== null) trace(e, e.context, true, attrs);
    const a = e.context.map.get(attr);
    if (a === undefined) throw new EvaluationError(`record does not have the attribute \`${attr}\``);
    return a;
  }
  const v = which === 1 ? e.principal : e.resource;
  if (e.trace !== null) trace(e, v, false, attrs);
  const d = which === 1 ? e.principalData : e.resourceData;
  if (d === undefined) throw new EvaluationError(`entity \`${v.key}\` does not exist`);
  const a = d.attrs.get(attr);
  if (a === undefined) throw new EvaluationError(`\`${v.key}\` does not have the attribute \`${attr}\``);
  return a;
}

/** A `.` chain (`principal.a.b`), compiled as one unit so explain can report the whole path. */
function compileAttrChain(base: Expr, attrs: string[], c: Compiler): Fn {
  const b = c.expr(base);
  const isContext = base.Var === 'context';
  if (attrs.length === 1) {
    const attr = attrs[0] as string;
    // The common `context.x` / `principal.x` / `resource.x`: read the variable directly instead of
    // calling a closure; comparisons and equality fuse this read into their own closure (see `directs`).
    const which = isContext ? 0 : base.Var === 'principal' ? 1 : base.Var === 'resource' ? 2 : -1;
    if (which >= 0) {
      const w = which as 0 | 1 | 2;
      const f: Fn = (e) => directGet(e, w, attr, attrs);
      directs.set(f, { which: w, attr, attrs });
      return f;
    }
    return (e) => {
      const v = b(e);
      if (e.trace !== null) trace(e, v, isContext, attrs);
      return getAttr(e, v, attr);
    };
  }
  return (e) => {
    let v = b(e);
    if (e.trace !== null) trace(e, v, isContext, attrs);
    for (const attr of attrs) v = getAttr(e, v, attr);
    return v;
  };
}

/** Records what a chain reads: from its root entity (or context) along record steps. */
function trace(e: Env, root: Value, isContext: boolean, attrs: string[]): void {
  const t = e.trace as AttributeRead[];
  let cur: { path: string[] } | null = null;
  if (root instanceof EntityUid) {
    cur = { path: [] };
    t.push({ on: 'entity', entity: entityJson(root), path: cur.path });
  } else if (isContext) {
    cur = { path: [] };
    t.push({ on: 'context', path: cur.path });
  }
  let v: Value | undefined = root;
  for (const attr of attrs) {
    if (v instanceof EntityUid && v !== root) {
      cur = { path: [] };
      t.push({ on: 'entity', entity: entityJson(v), path: cur.path });
    }
    cur?.path.push(attr);
    if (v instanceof EntityUid) v = e.entities.get(v.key)?.attrs.get(attr);
    else if (v instanceof CedarRecord) v = v.map.get(attr);
    else v = undefined;
    if (v === undefined) return;
  }
}

function binary(node: Expr, c: Compiler): [Fn, Fn] {
  const n = node as { left: Expr; right: Expr };
  return [c.expr(n.left), c.expr(n.right)];
}

/** Compiles expressions; restores exact 64-bit literals that the JSON form would have rounded. */
export class Compiler {
  readonly #bigLiterals: ReadonlyMap<number, bigint>;
  /** @param bigLiterals stand-in → exact magnitude, from the policy's chunk (see split.ts). */
  constructor(bigLiterals: ReadonlyMap<number, bigint>) {
    this.#bigLiterals = bigLiterals;
  }

  /** Replaces each literal stand-in (or its negation, where Cedar folded a `-`) with the exact literal. */
  exact(v: unknown): unknown {
    if (this.#bigLiterals.size === 0) return v;
    if (typeof v === 'number') {
      const b = this.#bigLiterals.get(Math.abs(v));
      if (b === undefined) return v;
      return v < 0 ? -b : b;
    }
    if (Array.isArray(v)) return v.map((x) => this.exact(x));
    if (typeof v === 'object' && v !== null) {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = this.exact(x);
      return o;
    }
    return v;
  }

  expr(node: Expr): Fn {
    const key = Object.keys(node)[0];
    if (key === undefined) throw compileError('empty expression');
    const arg = node[key] as Expr;
    switch (key) {
      case 'Value': {
        try {
          return constant(valueFromJson(this.exact(arg), 'literal'));
        } catch (err) {
          throw compileError((err as Error).message);
        }
      }
      case 'Var': {
        switch (arg as unknown as string) {
          case 'principal':
            return (e) => e.principal;
          case 'action':
            return (e) => e.action;
          case 'resource':
            return (e) => e.resource;
          case 'context':
            return (e) => e.context;
        }
        throw compileError(`unknown variable ${String(arg)}`);
      }
      case 'Slot':
        throw compileError(`unlinked template slot ${String(arg)}`);
      case '!': {
        const a = this.expr((arg as { arg: Expr }).arg);
        return (e) => !asBool(a(e));
      }
      case 'neg': {
        const a = this.expr((arg as { arg: Expr }).arg);
        return (e) => {
          const v = a(e);
          if (!isLong(v)) throw typeError('long', v);
          return negLong(v);
        };
      }
      case '==':
      case '!=': {
        const [l, r] = binary(arg, this);
        const eq = this.#equality(l, r);
        return key === '==' ? eq : (e) => !eq(e);
      }
      case 'in': {
        const [l, r] = binary(arg, this);
        const k = constants.get(r);
        if (k instanceof EntityUid) {
          const rk = k.key;
          return (e) => {
            const v = l(e);
            if (!(v instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', v);
            if (v.key === rk) return true;
            const d = e.entities.get(v.key);
            return d !== undefined && d.ancestors.has(rk);
          };
        }
        return (e) => {
          const a = l(e);
          return evalIn(e, a, r(e));
        };
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const [l, r] = binary(arg, this);
        const k = constants.get(r);
        if (typeof k === 'number') {
          // Comparing with a small literal (`context.risk < 5`): no call for the constant side.
          const op = key;
          const d = directs.get(l);
          if (d !== undefined) {
            const { which, attr, attrs } = d;
            return (e) => {
              const a = directGet(e, which, attr, attrs);
              if (typeof a === 'number') return op === '<' ? a < k : op === '<=' ? a <= k : op === '>' ? a > k : a >= k;
              return op === '<' || op === '<=' ? compare(a, k, op === '<') : compare(k, a, op === '>');
            };
          }
          return (e) => {
            const a = l(e);
            if (typeof a === 'number') return op === '<' ? a < k : op === '<=' ? a <= k : op === '>' ? a > k : a >= k;
            return op === '<' || op === '<=' ? compare(a, k, op === '<') : compare(k, a, op === '>');
          };
        }
        if (key === '>' || key === '>=') {
          const strict = key === '>';
          return (e) => {
            const a = l(e);
            const b = r(e);
            if (typeof a === 'number' && typeof b === 'number') return strict ? a > b : a >= b;
            return compare(b, a, strict);
          };
        }
        const strict = key === '<';
        return (e) => {
          const a = l(e);
          const b = r(e);
          if (typeof a === 'number' && typeof b === 'number') return strict ? a < b : a <= b;
          return compare(a, b, strict);
        };
      }
      case '&&': {
        const [l, r] = binary(arg, this);
        return (e) => asBool(l(e)) && asBool(r(e));
      }
      case '||': {
        const [l, r] = binary(arg, this);
        return (e) => asBool(l(e)) || asBool(r(e));
      }
      case '+':
      case '-':
      case '*': {
        const [l, r] = binary(arg, this);
        const op = key === '+' ? addLong : key === '-' ? subLong : mulLong;
        return (e) => {
          const a = l(e);
          const b = r(e);
          if (!isLong(a)) throw typeError('long', a);
          if (!isLong(b)) throw typeError('long', b);
          return op(a, b);
        };
      }
      case 'contains': {
        const [l, r] = binary(arg, this);
        return (e) => {
          const a = l(e);
          const b = r(e);
          if (!(a instanceof CedarSet)) throw typeError('set', a);
          return a.has(b);
        };
      }
      case 'containsAll':
      case 'containsAny': {
        const [l, r] = binary(arg, this);
        const all = key === 'containsAll';
        return (e) => {
          const a = l(e);
          const b = r(e);
          if (!(a instanceof CedarSet)) throw typeError('set', a);
          if (!(b instanceof CedarSet)) throw typeError('set', b);
          return all ? b.items.every((x) => a.has(x)) : b.items.some((x) => a.has(x));
        };
      }
      case 'isEmpty': {
        const a = this.expr((arg as { arg: Expr }).arg);
        return (e) => {
          const v = a(e);
          if (!(v instanceof CedarSet)) throw typeError('set', v);
          return v.size === 0;
        };
      }
      case 'getTag':
      case 'hasTag': {
        const [l, r] = binary(arg, this);
        const get = key === 'getTag';
        return (e) => {
          const a = l(e);
          const b = r(e);
          if (!(a instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', a);
          if (typeof b !== 'string') throw typeError('string', b);
          if (e.trace !== null) e.trace.push({ on: 'tag', entity: entityJson(a), tag: b });
          const d = e.entities.get(a.key);
          if (!get) return d?.tags?.has(b) ?? false;
          if (d === undefined) throw new EvaluationError(`entity \`${a.key}\` does not exist`);
          const t = d.tags?.get(b);
          if (t === undefined) throw new EvaluationError(`\`${a.key}\` does not have the tag \`${b}\``);
          return t;
        };
      }
      case '.': {
        const attrs: string[] = [];
        let base: Expr = node;
        while ('.' in base && Object.keys(base).length === 1) {
          const g = base['.'] as { left: Expr; attr: string };
          attrs.unshift(intern(g.attr));
          base = g.left;
        }
        return compileAttrChain(base, attrs, this);
      }
      case 'has': {
        const h = arg as { left: Expr; attr: string | string[] };
        const l = this.expr(h.left);
        const attrs = (Array.isArray(h.attr) ? h.attr : [h.attr]).map(intern);
        if (attrs.length === 1) {
          const attr = attrs[0] as string;
          return (e) => hasAttr(e, l(e), attr);
        }
        // `e has a.b.c` is `e has a && e.a has b && e.a.b has c`.
        return (e) => {
          let v = l(e);
          for (let i = 0; i < attrs.length; i++) {
            const attr = attrs[i] as string;
            if (!hasAttr(e, v, attr)) return false;
            if (i < attrs.length - 1) v = getAttr(e, v, attr);
          }
          return true;
        };
      }
      case 'like': {
        const k = arg as { left: Expr; pattern: PatternElem[] };
        const l = this.expr(k.left);
        const match = compileLike(k.pattern);
        return (e) => {
          const v = l(e);
          if (typeof v !== 'string') throw typeError('string', v);
          return match(v);
        };
      }
      case 'is': {
        const k = arg as { left: Expr; entity_type: string; in?: Expr };
        const l = this.expr(k.left);
        const type = k.entity_type;
        if (k.in === undefined) {
          return (e) => {
            const v = l(e);
            if (!(v instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', v);
            return v.type === type;
          };
        }
        // `e is T in x` is `e is T && e in x`.
        const r = this.expr(k.in);
        return (e) => {
          const v = l(e);
          if (!(v instanceof EntityUid)) throw typeError('(entity of type `any_entity_type`)', v);
          if (v.type !== type) return false;
          return evalIn(e, v, r(e));
        };
      }
      case 'if-then-else': {
        const k = arg as { if: Expr; then: Expr; else: Expr };
        const i = this.expr(k.if);
        const t = this.expr(k.then);
        const f = this.expr(k.else);
        return (e) => (asBool(i(e)) ? t(e) : f(e));
      }
      case 'Set': {
        const items = (arg as unknown as Expr[]).map((x) => this.expr(x));
        if (items.every((f) => constants.has(f))) return constant(CedarSet.of(items.map((f) => constants.get(f) as Value)));
        return (e) => CedarSet.of(items.map((f) => f(e)));
      }
      case 'Record': {
        const entries = Object.entries(arg).map(([k, x]) => [k, this.expr(x as Expr)] as const);
        return (e) => {
          const m = new Map<string, Value>();
          for (const [k, f] of entries) m.set(k, f(e));
          return new CedarRecord(m);
        };
      }
    }
    if (!Array.isArray(arg)) throw compileError(`unknown expression \`${key}\``);
    if (!isExtensionFunction(key)) throw compileError(`\`${key}\` is not a valid function`);
    const fn = extensionFunction(key);
    const args = (arg as Expr[]).map((x) => this.expr(x));
    if (args.length === 1) {
      const a0 = args[0] as Fn;
      if (constants.has(a0)) {
        // Constructor with a literal (`ip("10.0.0.0/8")`): evaluate once, unless it errors.
        try {
          return constant(fn([constants.get(a0) as Value]));
        } catch {
          /* evaluate (and fail) at decision time, as Cedar does */
        }
      }
      return (e) => fn([a0(e)]);
    }
    return (e) => fn(args.map((f) => f(e)));
  }

  #equality(l: Fn, r: Fn): (e: Env) => boolean {
    const kl = constants.get(l);
    const kr = constants.get(r);
    const k = kr ?? kl;
    const other = kr !== undefined ? l : r;
    const exactlyOneConstant = (kl === undefined) !== (kr === undefined);
    if (k !== undefined && exactlyOneConstant) {
      const d = directs.get(other);
      if (typeof k !== 'object') {
        if (d !== undefined) {
          const { which, attr, attrs } = d;
          return (e) => directGet(e, which, attr, attrs) === k;
        }
        return (e) => other(e) === k;
      }
      if (k instanceof EntityUid) {
        const key = k.key;
        return (e) => {
          const v = other(e);
          return v instanceof EntityUid && v.key === key;
        };
      }
    }
    return (e) => {
      const a = l(e);
      const b = r(e);
      return a === b || valueEquals(a, b);
    };
  }
}

export function compileError(message: string): MandateError {
  return new MandateError('POLICY_COMPILE', message, 400);
}

/** The policy's conditions as one predicate (`when` bodies true, `unless` bodies false). */
export function compileConditions(est: PolicyJson, c: Compiler): ((e: Env) => boolean) | null {
  const clauses = est.conditions.map((cl) => ({ when: cl.kind === 'when', f: c.expr(cl.body as unknown as Expr) }));
  if (clauses.length === 0) return null;
  if (clauses.length === 1) {
    const { when, f } = clauses[0] as { when: boolean; f: Fn };
    return when ? (e) => asBool(f(e)) : (e) => !asBool(f(e));
  }
  return (e) => {
    for (const { when, f } of clauses) if (asBool(f(e)) !== when) return false;
    return true;
  };
}
