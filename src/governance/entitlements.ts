import { MandateError } from '../core/errors.ts';

/**
 * An entitlement is a string with a kind prefix: `role:<name>`, `tool:<server>/<tool>`, `scope:<scope>`,
 * or any other `<kind>:<value>` an administrator defines. Grants name exact entitlements; rules (approval
 * rules, separation of duties) may use `*` as a wildcard matching any run of characters.
 */
const KIND = '[a-z][a-z0-9_-]{0,31}';
// Printable ASCII without spaces, quotes or backslashes: the value is safe in Cedar string literals,
// log lines and URLs alike.
const VALUE = "[\\x21\\x23-\\x26\\x28-\\x29\\x2b-\\x5b\\x5d-\\x7e]{1,200}";
export const ENTITLEMENT_RE = new RegExp(`^${KIND}:${VALUE}$`);
export const ENTITLEMENT_PATTERN_RE = new RegExp(`^(${KIND}:[\\x21\\x23-\\x26\\x28-\\x5b\\x5d-\\x7e]{1,200}|\\*)$`);

export function isEntitlement(value: string): boolean {
  return ENTITLEMENT_RE.test(value) && value.length <= 233;
}

export function assertEntitlement(value: string): void {
  if (!isEntitlement(value)) {
    throw new MandateError('ENTITLEMENT_INVALID', `"${value.slice(0, 80)}" is not an entitlement: expected <kind>:<value> (e.g. role:admin, tool:crm/export, scope:files.read), no wildcards or spaces`, 400);
  }
}

export function isEntitlementPattern(value: string): boolean {
  return ENTITLEMENT_PATTERN_RE.test(value);
}

const compiled = new Map<string, RegExp>();

/** Whether `entitlement` matches `pattern` (`*` matches any run of characters, including `/` and `:`). */
export function matchesPattern(pattern: string, entitlement: string): boolean {
  if (!pattern.includes('*')) return pattern === entitlement;
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(entitlement);
}

/**
 * How specific a pattern is, to pick the rule that fits best: an exact entitlement beats any pattern;
 * between patterns, more literal characters win.
 */
export function specificity(pattern: string): number {
  if (!pattern.includes('*')) return Number.MAX_SAFE_INTEGER;
  return pattern.replaceAll('*', '').length;
}

/** The role name of a `role:` entitlement, else undefined. */
export function roleOf(entitlement: string): string | undefined {
  return entitlement.startsWith('role:') ? entitlement.slice(5) : undefined;
}

/** The `<server>/<tool>` of a `tool:` entitlement (or pattern), else undefined. */
export function toolOf(entitlement: string): string | undefined {
  return entitlement.startsWith('tool:') ? entitlement.slice(5) : undefined;
}

/** What a principal's entitlements add to its Cedar entity (see docs/governance.md). */
export interface CedarEntitlementProjection {
  /** Merge into the principal's attributes: `entitlements: Set<String>`. */
  attrs: { entitlements: string[] };
  /** Add to the principal's parents: one `Role::"<name>"` per `role:` entitlement. */
  parents: { type: 'Role'; id: string }[];
}

/**
 * Projects entitlements into Cedar: every entitlement into the `entitlements` set attribute, and each
 * `role:<name>` also as a parent `Role::"<name>"`, so policies may say either
 * `principal.entitlements.contains("tool:crm/export")` or `principal in Role::"support"`.
 */
export function cedarProjection(entitlements: readonly string[]): CedarEntitlementProjection {
  const sorted = [...new Set(entitlements)].sort();
  const parents: { type: 'Role'; id: string }[] = [];
  for (const e of sorted) {
    const role = roleOf(e);
    if (role !== undefined) parents.push({ type: 'Role', id: role });
  }
  return { attrs: { entitlements: sorted }, parents };
}
