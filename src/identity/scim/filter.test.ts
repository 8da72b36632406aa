import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MandateError } from '../../core/errors.ts';
import { anchorOf, matches, parseFilter } from './filter.ts';

const user = { id: 'hum_1', userName: 'Bjensen@Example.com', externalId: 'ext-1', displayName: 'Babs', active: true, emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }] };

describe('SCIM filters', () => {
  it('RFC7644-3.4.2.2 parses eq on userName, case-insensitive in attribute name and value', () => {
    const plan = parseFilter('User', 'USERNAME eq "bjensen@example.com"');
    expect(plan).toEqual([[{ attribute: 'userName', value: 'bjensen@example.com' }]]);
    expect(anchorOf('User', plan[0]!)).toEqual({ kind: 'userName', value: 'bjensen@example.com' });
    expect(matches('User', plan, user)).toBe(true);
  });

  it('accepts fully qualified attribute names', () => {
    expect(parseFilter('User', 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a"')).toEqual([[{ attribute: 'userName', value: 'a' }]]);
  });

  it('externalId and id compare exactly (caseExact)', () => {
    expect(matches('User', parseFilter('User', 'externalId eq "ext-1"'), user)).toBe(true);
    expect(matches('User', parseFilter('User', 'externalId eq "EXT-1"'), user)).toBe(false);
    expect(matches('User', parseFilter('User', 'id eq "HUM_1"'), user)).toBe(false);
  });

  it('matches emails by value, with or without a type filter', () => {
    expect(matches('User', parseFilter('User', 'emails.value eq "BJENSEN@example.com"'), user)).toBe(true);
    expect(matches('User', parseFilter('User', 'emails[type eq "work"].value eq "bjensen@example.com"'), user)).toBe(true);
    expect(matches('User', parseFilter('User', 'emails[type eq "home" and value eq "bjensen@example.com"]'), user)).toBe(false);
    expect(anchorOf('User', parseFilter('User', 'emails[type eq "work"].value eq "x@y"')[0]!)).toEqual({ kind: 'email', value: 'x@y' });
  });

  it('takes and/or, each branch anchored; Entra string booleans compare as booleans', () => {
    const plan = parseFilter('User', 'userName eq "a" or (externalId eq "ext-1" and active eq "True")');
    expect(plan).toHaveLength(2);
    expect(matches('User', plan, user)).toBe(true);
    expect(matches('User', parseFilter('User', 'externalId eq "ext-1" and active eq false'), user)).toBe(false);
  });

  it('group filters: displayName (case-insensitive), members', () => {
    const group = { id: 'grp_1', displayName: 'Engineering', members: [{ value: 'hum_1' }] };
    expect(matches('Group', parseFilter('Group', 'displayName eq "engineering"'), group)).toBe(true);
    const plan = parseFilter('Group', 'id eq "grp_1" and members[value eq "hum_1"]');
    expect(anchorOf('Group', plan[0]!)).toEqual({ kind: 'id', value: 'grp_1' });
    expect(matches('Group', plan, group)).toBe(true);
    expect(matches('Group', parseFilter('Group', 'members.value eq "hum_2"'), group)).toBe(false);
  });

  it.each([
    ['unsupported attribute', 'title eq "x"'],
    ['unsupported operator', 'userName co "x"'],
    ['negation', 'not (userName eq "x")'],
    ['no indexed attribute', 'active eq true'],
    ['a branch without an indexed attribute', 'userName eq "a" or active eq true'],
    ['missing value', 'userName eq'],
    ['wrong value type', 'userName eq 5'],
    ['presence', 'userName pr'],
    ['dangling operator', 'userName eq "a" and'],
    ['leading operator', 'or userName eq "a"'],
    ['unbalanced', '(userName eq "a"'],
    ['empty', '  '],
    ['exponential expansion', Array.from({ length: 16 }, (_, i) => `(userName eq "${i}" or externalId eq "${i}")`).join(' and ')],
    ['exponential expansion with no space after a string', Array.from({ length: 16 }, (_, i) => `(userName eq "${i}"or externalId eq "${i}")`).join(' and ')],
    ['exponential expansion with no space around the operator', Array.from({ length: 16 }, (_, i) => `(userName eq "${i}"or(externalId eq "${i}"))`).join(' and ')],
    ['exponential expansion behind backslash-quotes (a scimmy string ends at the first quote)', Array.from({ length: 16 }, () => '(userName eq "\\" or externalId eq "\\")').join(' and ')],
    ['exponential expansion behind a literal run into the operator', Array.from({ length: 16 }, (_, i) => `(active eq trueor userName eq "${i}")`).join(' and ')],
    ['too long', `userName eq "${'a'.repeat(3000)}"`],
  ])('RFC7644-3.4.2.2 refuses %s with invalidFilter', (_label, expression) => {
    expect(() => parseFilter('User', expression)).toThrowError(expect.objectContaining({ status: 400, details: { scimType: 'invalidFilter' } }) as Error);
  });

  it('property: any string either parses to an anchored plan or is refused with invalidFilter (never another error)', () => {
    const token = fc.constantFrom('userName', 'externalId', 'emails', 'emails.value', '[', ']', '(', ')', 'eq', 'ne', 'pr', 'and', 'or', 'not', '"x"', '"a b"', 'true', '1', 'null', '.', 'value', 'type');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), fc.array(token, { maxLength: 14 }).map((t) => t.join(' '))), fc.constantFrom('User', 'Group'), (expression, kind: 'User' | 'Group') => {
        try {
          const plan = parseFilter(kind, expression);
          for (const branch of plan) expect(anchorOf(kind, branch)).toBeDefined();
        } catch (error) {
          expect(error).toBeInstanceOf(MandateError);
          expect((error as MandateError).details).toEqual({ scimType: 'invalidFilter' });
        }
      }),
      { numRuns: 2000 },
    );
  });
});
