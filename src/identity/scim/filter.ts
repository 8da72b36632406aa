import SCIMMY from 'scimmy';
import { GROUP_SCHEMA, MAX_FILTER_LENGTH, USER_SCHEMA } from './constants.ts';
import { fromClientInput, scimError } from './errors.ts';

export type ScimResourceKind = 'User' | 'Group';

/** One `eq` test: `attribute eq value`, or, for a multi-valued attribute, `attribute[sub eq value and …]`. */
export type Condition = { attribute: string; value: string | boolean } | { attribute: string; element: Record<string, string> };

/** Disjunctive normal form: the filter matches a resource when every condition of some branch holds. */
export type FilterPlan = Condition[][];

/** An attribute the store can look up directly; every branch must name one, so no filter scans the directory. */
export type Anchor = { kind: 'id' | 'userName' | 'externalId' | 'email' | 'displayName' | 'member'; value: string };

/**
 * scimmy expands `(a or b) and (c or d) …` into every combination, so its cost doubles with each such
 * group (16 groups take seconds). Real IdPs send one `eq` (Okta, Entra); a handful of `or`s is plenty.
 */
export const MAX_OR = 8;

interface AttributeRule {
  /** RFC 7643 `caseExact`: whether `eq` compares exactly or ignoring case. */
  caseExact: boolean;
  type: 'string' | 'boolean';
  anchor?: Anchor['kind'];
  /** For multi-valued complex attributes: the sub-attributes a value filter may test. */
  sub?: Record<string, { caseExact: boolean; anchor?: Anchor['kind'] }>;
}

const RULES: Record<ScimResourceKind, Record<string, AttributeRule>> = {
  User: {
    id: { caseExact: true, type: 'string', anchor: 'id' },
    username: { caseExact: false, type: 'string', anchor: 'userName' },
    externalid: { caseExact: true, type: 'string', anchor: 'externalId' },
    displayname: { caseExact: false, type: 'string' },
    active: { caseExact: true, type: 'boolean' },
    emails: { caseExact: false, type: 'string', sub: { value: { caseExact: false, anchor: 'email' }, type: { caseExact: false } } },
  },
  Group: {
    id: { caseExact: true, type: 'string', anchor: 'id' },
    displayname: { caseExact: false, type: 'string', anchor: 'displayName' },
    externalid: { caseExact: true, type: 'string', anchor: 'externalId' },
    members: { caseExact: true, type: 'string', sub: { value: { caseExact: true, anchor: 'member' } } },
  },
};

/** Canonical attribute names, for matching a resource's JSON. */
const CANONICAL: Record<string, string> = { id: 'id', username: 'userName', externalid: 'externalId', displayname: 'displayName', active: 'active', emails: 'emails', members: 'members', value: 'value', type: 'type' };

/**
 * The `or` operators of a filter, counted before scimmy sees it, and counted generously: every "or"
 * that is not inside a word (a letter on both sides), in strings too. Reading the filter as scimmy does
 * cannot be trusted to agree with scimmy: it reads `"a"or`, `trueor` and `"\"` (a string ends at the
 * first quote, backslash or not) differently from a careful reader, and each disagreement let the
 * exponential expansion through. Over-counting only refuses unusual filters sooner; real identity
 * providers send one `eq`.
 */
export function countOr(expression: string): number {
  let count = 0;
  const letter = (ch: string | undefined) => ch !== undefined && /[A-Za-z]/.test(ch);
  for (let i = 0; i + 1 < expression.length; i++) {
    const ch = expression[i]!;
    const next = expression[i + 1]!;
    if ((ch === 'o' || ch === 'O') && (next === 'r' || next === 'R') && !(letter(expression[i - 1]) && letter(expression[i + 2]))) count++;
  }
  return count;
}

/** Refuses, before scimmy parses it, a filter whose expansion would cost too much (a `?filter=` or a PATCH path's value filter). */
export function assertFilterBounded(expression: string, ors = countOr(expression)): void {
  if (expression.length > MAX_FILTER_LENGTH) throw invalid(`the filter is longer than ${MAX_FILTER_LENGTH} characters`);
  if (ors > MAX_OR) throw invalid(`the filter has more than ${MAX_OR} "or" operators`);
}

const invalid = (detail: string) => scimError('invalidFilter', detail);

/**
 * Parses a SCIM filter (RFC 7644 §3.4.2.2) with scimmy and keeps what Mandate can answer without
 * scanning the directory: `eq` on the attributes in RULES, joined by `and`/`or`, each branch naming at
 * least one directly indexed attribute. Anything else is `400 invalidFilter` (§3.4.2.2: "If the
 * specified filter is not supported, the service provider SHALL return a 400 with scimType invalidFilter").
 */
export function parseFilter(kind: ScimResourceKind, expression: string): FilterPlan {
  if (expression.trim() === '') throw invalid('the filter is empty');
  assertFilterBounded(expression);
  // scimmy lets a dangling logical operator through (`userName eq "a" or`); RFC 7644 §3.4.2.2's grammar does not.
  if (/(^|[\s)\]])(and|or)\s*$/i.test(expression) || /^\s*(and|or)(\s|\(|$)/i.test(expression)) throw invalid('the filter starts or ends with a logical operator');
  const parsed = fromClientInput('invalidFilter', () => [...new SCIMMY.Types.Filter(expression)] as Record<string, unknown>[]);
  const rules = RULES[kind];
  const prefix = `${(kind === 'User' ? USER_SCHEMA : GROUP_SCHEMA).toLowerCase()}:`;
  return parsed.map((branch) => {
    const conditions: Condition[] = [];
    for (const [rawName, test] of Object.entries(branch)) {
      let name = rawName.toLowerCase();
      if (name.startsWith(prefix)) name = name.slice(prefix.length);
      const rule = rules[name];
      if (!rule) throw invalid(`filtering on "${rawName}" is not supported`);
      const attribute = CANONICAL[name]!;
      if (rule.sub) {
        if (test === null || typeof test !== 'object' || Array.isArray(test)) throw invalid(`filter "${rawName}" by one of its sub-attributes: ${Object.keys(rule.sub).join(', ')}`);
        const element: Record<string, string> = {};
        for (const [rawSub, subTest] of Object.entries(test as Record<string, unknown>)) {
          const sub = rawSub.toLowerCase();
          if (!rule.sub[sub]) throw invalid(`filtering on "${rawName}.${rawSub}" is not supported`);
          const value = equalityValue(subTest, 'string', `${rawName}.${rawSub}`);
          if (element[CANONICAL[sub]!] !== undefined && element[CANONICAL[sub]!] !== value) return null;
          element[CANONICAL[sub]!] = value as string;
        }
        conditions.push({ attribute, element });
      } else {
        const tests = Array.isArray(test) && test.every(Array.isArray) ? (test as unknown[]) : [test];
        for (const t of tests) conditions.push({ attribute, value: equalityValue(t, rule.type, rawName) });
      }
    }
    if (!anchorOf(kind, conditions)) throw invalid(`each part of the filter must test one of: ${anchorNames(kind)} with "eq"`);
    return conditions;
  }).filter((branch): branch is Condition[] => branch !== null);
}

function equalityValue(test: unknown, type: 'string' | 'boolean', name: string): string | boolean {
  if (!Array.isArray(test) || test.length !== 2 || String(test[0]).toLowerCase() !== 'eq') throw invalid(`only "eq" comparisons are supported (on "${name}")`);
  const value = test[1];
  // Entra ID quotes booleans ("True"); RFC 7644 §3.4.2.2 compares them as booleans.
  if (type === 'boolean' && typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  if (typeof value !== type) throw invalid(`"${name}" must be compared with a ${type}`);
  return value as string | boolean;
}

function anchorNames(kind: ScimResourceKind): string {
  return Object.entries(RULES[kind])
    .flatMap(([name, rule]) => [...(rule.anchor ? [CANONICAL[name]!] : []), ...Object.entries(rule.sub ?? {}).filter(([, s]) => s.anchor).map(([sub]) => `${CANONICAL[name]!}.${sub}`)])
    .join(', ');
}

/** The best indexed lookup for a branch: ids first, then the most selective attributes. */
export function anchorOf(kind: ScimResourceKind, branch: Condition[]): Anchor | undefined {
  const order: Anchor['kind'][] = ['id', 'userName', 'externalId', 'email', 'displayName', 'member'];
  const found: Anchor[] = [];
  for (const condition of branch) {
    const rule = RULES[kind][condition.attribute.toLowerCase()];
    if (!rule) continue;
    if ('value' in condition && rule.anchor && typeof condition.value === 'string') found.push({ kind: rule.anchor, value: condition.value });
    if ('element' in condition) {
      for (const [sub, value] of Object.entries(condition.element)) {
        const anchor = rule.sub?.[sub.toLowerCase()]?.anchor;
        if (anchor) found.push({ kind: anchor, value });
      }
    }
  }
  found.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  return found[0];
}

/** Whether a resource (its SCIM JSON) satisfies the filter. */
export function matches(kind: ScimResourceKind, plan: FilterPlan, resource: Record<string, unknown>): boolean {
  return plan.some((branch) => branch.every((condition) => holds(kind, condition, resource)));
}

function same(actual: unknown, expected: string | boolean, caseExact: boolean): boolean {
  if (typeof expected === 'boolean' || typeof actual !== 'string') return actual === expected;
  return caseExact ? actual === expected : actual.toLowerCase() === expected.toLowerCase();
}

function holds(kind: ScimResourceKind, condition: Condition, resource: Record<string, unknown>): boolean {
  const rule = RULES[kind][condition.attribute.toLowerCase()]!;
  const actual = resource[condition.attribute];
  if ('value' in condition) return same(actual, condition.value, rule.caseExact);
  if (!Array.isArray(actual)) return false;
  return actual.some((element) => {
    if (element === null || typeof element !== 'object') return false;
    return Object.entries(condition.element).every(([sub, value]) => same((element as Record<string, unknown>)[sub], value, rule.sub?.[sub.toLowerCase()]?.caseExact ?? true));
  });
}
