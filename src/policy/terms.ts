/**
 * Simple conditions as flat term lists. Most real conditions are a conjunction of tests of one
 * attribute of `context`, `principal` or `resource` against a literal (`context.risk < 5 &&
 * principal.env == "prod"`). Such a condition is stored as one flat array (5 slots per term) and run
 * by one shared loop: a handful of memory loads per policy instead of a tree of closures, which is
 * what a decision costs once thousands of policies no longer fit in the CPU caches. Semantics are
 * those of the closures: terms run left to right, the first false one decides, errors propagate.
 */
import type { PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { compare, directGet, intern, typeError } from './compile.ts';
import type { Direct, Env, Expr } from './compile.ts';
import { valueEquals } from './values.ts';
import type { Value } from './values.ts';

const OP_BOOL = 0;
const OP_NOT = 1;
const OP_LT = 2;
const OP_LE = 3;
const OP_GT = 4;
const OP_GE = 5;
const OP_EQ = 6;
const OP_NE = 7;
/** A disjunction of simple terms; the literal slot holds their flat list. */
const OP_OR = 8;
const CMP_OPS: Record<string, number> = { '<': OP_LT, '<=': OP_LE, '>': OP_GT, '>=': OP_GE };
/** `!(a op k)` as a term: identical results and identical errors (`compare` type-checks either way). */
const NEGATED = [OP_NOT, OP_BOOL, OP_GE, OP_GT, OP_LE, OP_LT, OP_NE, OP_EQ];

export type Terms = readonly (number | string | string[] | Value)[];

function directOf(x: Expr): Direct | undefined {
  const g = x['.'] as { left: Expr; attr: string } | undefined;
  if (g === undefined || Object.keys(x).length !== 1) return undefined;
  const v = g.left.Var;
  if (Object.keys(g.left).length !== 1 || (v !== 'context' && v !== 'principal' && v !== 'resource')) return undefined;
  const attr = intern(g.attr);
  return { which: v === 'context' ? 0 : v === 'principal' ? 1 : 2, attr, attrs: [attr] };
}

function literalOf(x: Expr): string | number | boolean | undefined {
  if (Object.keys(x).length !== 1 || !('Value' in x)) return undefined;
  const v = x.Value;
  if (typeof v === 'string') return intern(v);
  if (typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v))) return v === 0 ? 0 : v;
  return undefined;
}

/** One conjunct as [which, attr, attrs, op, literal], or undefined when it is not that simple. */
function termOf(x: Expr): [0 | 1 | 2, string, string[], number, Value] | undefined {
  const d = directOf(x);
  if (d !== undefined) return [d.which, d.attr, d.attrs, OP_BOOL, true];
  const not = x['!'] as { arg: Expr } | undefined;
  if (not !== undefined) {
    const n = directOf(not.arg);
    return n === undefined ? undefined : [n.which, n.attr, n.attrs, OP_NOT, true];
  }
  const key = Object.keys(x)[0] as string;
  const op = key === '==' ? OP_EQ : key === '!=' ? OP_NE : CMP_OPS[key];
  if (op === undefined || Object.keys(x).length !== 1) return undefined;
  const b = x[key] as { left: Expr; right: Expr };
  let l = directOf(b.left);
  let k = literalOf(b.right);
  if ((l === undefined || k === undefined) && (op === OP_EQ || op === OP_NE)) {
    l = directOf(b.right);
    k = literalOf(b.left);
  }
  if (l === undefined || k === undefined) return undefined;
  if (op !== OP_EQ && op !== OP_NE && typeof k !== 'number') return undefined;
  return [l.which, l.attr, l.attrs, op, k];
}

function disjuncts(x: Expr, out: Expr[]): void {
  const or = x['||'] as { left: Expr; right: Expr } | undefined;
  if (or !== undefined && Object.keys(x).length === 1) {
    disjuncts(or.left, out);
    disjuncts(or.right, out);
  } else out.push(x);
}

/** `a || b || …` of simple terms as one OP_OR term. */
function orTermOf(x: Expr): [0, string, string[], number, Value] | undefined {
  const parts: Expr[] = [];
  disjuncts(x, parts);
  if (parts.length < 2) return undefined;
  const flat: (number | string | string[] | Value)[] = [];
  for (const p of parts) {
    const t = termOf(p);
    if (t === undefined) return undefined;
    flat.push(...t);
  }
  return [0, '', [], OP_OR, flat as unknown as Value];
}

function conjuncts(x: Expr, out: Expr[]): void {
  const and = x['&&'] as { left: Expr; right: Expr } | undefined;
  if (and !== undefined && Object.keys(x).length === 1) {
    conjuncts(and.left, out);
    conjuncts(and.right, out);
  } else out.push(x);
}

/** The policy's conditions as flat terms, or null when they need the general closures. */
export function compileTerms(est: PolicyJson): Terms | null {
  if (est.conditions.length === 0) return null;
  const terms: (number | string | string[] | Value)[] = [];
  for (const cl of est.conditions) {
    const parts: Expr[] = [];
    conjuncts(cl.body as unknown as Expr, parts);
    // `unless { a && b }` is not a conjunction of terms; `unless { a }` is the term `!a`.
    if (cl.kind === 'unless' && parts.length !== 1) return null;
    for (const part of parts) {
      const t = termOf(part);
      if (t !== undefined) {
        if (cl.kind === 'unless') t[3] = NEGATED[t[3]] as number;
        terms.push(...t);
        continue;
      }
      const or = orTermOf(part);
      if (or === undefined) return null;
      if (cl.kind === 'when') terms.push(...or);
      else {
        // `unless { a || b }` ≡ `!a && !b`: same order of evaluation, same errors.
        const flat = or[4] as unknown as (number | string | string[] | Value)[];
        for (let i = 0; i < flat.length; i += 5) {
          terms.push(flat[i] as number, flat[i + 1] as string, flat[i + 2] as string[], NEGATED[flat[i + 3] as number] as number, flat[i + 4] as Value);
        }
      }
    }
  }
  return terms;
}

function runTerm(e: Env, t: Terms, i: number): boolean {
  const v = directGet(e, t[i] as 0 | 1 | 2, t[i + 1] as string, t[i + 2] as string[]);
  const op = t[i + 3] as number;
  const k = t[i + 4] as Value;
  if (op === OP_EQ) return v === k || valueEquals(v, k);
  if (op === OP_NE) return !(v === k || valueEquals(v, k));
  if (op <= OP_NOT) {
    if (typeof v !== 'boolean') throw typeError('bool', v);
    return op === OP_BOOL ? v : !v;
  }
  if (typeof v === 'number') {
    const n = k as number;
    return op === OP_LT ? v < n : op === OP_LE ? v <= n : op === OP_GT ? v > n : v >= n;
  }
  return op === OP_LT || op === OP_LE ? compare(v, k, op === OP_LT) : compare(k, v, op === OP_GT);
}

export function runTerms(e: Env, t: Terms): boolean {
  for (let i = 0; i < t.length; i += 5) {
    if (t[i + 3] === OP_OR) {
      const sub = t[i + 4] as unknown as Terms;
      let any = false;
      for (let j = 0; j < sub.length; j += 5) {
        if (runTerm(e, sub, j)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    } else if (!runTerm(e, t, i)) return false;
  }
  return true;
}
