import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cedarProjection, isEntitlement, isEntitlementPattern, matchesPattern, specificity } from './entitlements.ts';
import { findConflict, rulePairs } from './sod.ts';
import type { SodRule } from './types.ts';

describe('entitlements', () => {
  it('accepts <kind>:<value> and refuses wildcards, spaces, quotes, empty parts', () => {
    for (const ok of ['role:admin', 'tool:crm/export', 'scope:files.read', 'app-x:thing_1', 'tool:github/create_issue']) expect(isEntitlement(ok)).toBe(true);
    for (const bad of ['role', 'role:', ':x', 'Role:x', 'role:a b', 'role:"x"', "role:'x'", 'tool:*', 'role:a\\b', 'role:\u0000', 'role:é', `role:${'x'.repeat(201)}`]) expect(isEntitlement(bad)).toBe(false);
    expect(isEntitlementPattern('tool:crm/*')).toBe(true);
    expect(isEntitlementPattern('*')).toBe(true);
  });

  it('patterns: * matches any run of characters, everything else literally', () => {
    expect(matchesPattern('tool:crm/*', 'tool:crm/export')).toBe(true);
    expect(matchesPattern('tool:crm/*', 'tool:crmx/export')).toBe(false);
    expect(matchesPattern('tool:*/delete', 'tool:files/delete')).toBe(true);
    expect(matchesPattern('tool:a.b', 'tool:aXb')).toBe(false);
    expect(matchesPattern('*', 'role:x')).toBe(true);
    expect(specificity('role:x')).toBeGreaterThan(specificity('role:*'));
    expect(specificity('tool:crm/*')).toBeGreaterThan(specificity('tool:*'));
  });

  it('property: a pattern without * matches exactly itself; value* matches every extension', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z]{1,5}:[a-z0-9./+?()[\]{}|^$]{1,10}$/), fc.stringMatching(/^[a-z0-9./]{0,10}$/), (e, tail) => {
        expect(matchesPattern(e, e)).toBe(true);
        expect(matchesPattern(e, `${e}${tail || 'x'}`)).toBe(false);
        expect(matchesPattern(`${e}*`, e + tail)).toBe(true);
      }),
    );
  });

  it('projects into Cedar: a sorted entitlements set and Role parents for role: entitlements', () => {
    expect(cedarProjection(['tool:b/c', 'role:support', 'role:admin', 'role:support'])).toEqual({
      attrs: { entitlements: ['role:admin', 'role:support', 'tool:b/c'] },
      parents: [
        { type: 'Role', id: 'admin' },
        { type: 'Role', id: 'support' },
      ],
    });
  });
});

describe('separation-of-duties conflicts', () => {
  const rule = (entitlements: string[], pairs: [string, string][] = []): SodRule => ({ id: 'sod_1', name: 'r', description: null, entitlements, pairs, countDelegation: false, enforce: 'grant', createdBy: 't', createdAt: '' });

  it('any two of `entitlements` conflict; explicit pairs conflict in either order', () => {
    expect(rulePairs(rule(['a:1', 'a:2', 'a:3']))).toEqual([['a:1', 'a:2'], ['a:1', 'a:3'], ['a:2', 'a:3']]);
    const r = rule([], [['role:create', 'role:approve']]);
    expect(findConflict(r, 'role:approve', new Map([['role:create', 'p']]))).toMatchObject({ rule: 'r', conflictsWith: 'role:create', heldBy: 'p' });
    expect(findConflict(r, 'role:create', new Map([['role:approve', 'q']]))).toMatchObject({ conflictsWith: 'role:approve', heldBy: 'q' });
    expect(findConflict(r, 'role:create', new Map([['role:create', 'p']]))).toBeUndefined();
    expect(findConflict(r, 'role:other', new Map([['role:approve', 'p']]))).toBeUndefined();
  });

  it('wildcards in rules match granted entitlements', () => {
    const r = rule([], [['tool:payments/*', 'tool:ledger/approve']]);
    expect(findConflict(r, 'tool:payments/send', new Map([['tool:ledger/approve', 'p']]))?.conflictsWith).toBe('tool:ledger/approve');
    expect(findConflict(r, 'tool:ledger/approve', new Map([['tool:payments/refund', 'p']]))?.conflictsWith).toBe('tool:payments/refund');
  });

  it('property: a conflict is symmetric — granting b to a holder of a conflicts iff granting a to a holder of b does', () => {
    const ent = fc.constantFrom('role:a', 'role:b', 'role:c', 'tool:x/1', 'tool:x/2', 'tool:y/1');
    const pat = fc.oneof(ent, fc.constantFrom('tool:x/*', 'tool:*', 'role:*'));
    fc.assert(
      fc.property(fc.array(fc.tuple(pat, pat), { maxLength: 4 }), fc.array(pat, { maxLength: 4 }), ent, ent, (pairs, list, a, b) => {
        const r = rule([...new Set(list)], pairs);
        const ab = findConflict(r, b, new Map([[a, 'p']])) !== undefined;
        const ba = findConflict(r, a, new Map([[b, 'p']])) !== undefined;
        expect(ab).toBe(ba);
      }),
    );
  });
});
