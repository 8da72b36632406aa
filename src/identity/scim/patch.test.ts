import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MandateError } from '../../core/errors.ts';
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA } from './constants.ts';
import { applyPatch, normalisePatch } from './patch.ts';

const user = { schemas: [USER_SCHEMA], id: 'hum_1', userName: 'a@example.com', displayName: 'A', active: true, emails: [{ value: 'a@example.com', type: 'work', primary: true }], groups: [] };
const group = { schemas: [GROUP_SCHEMA], id: 'grp_1', displayName: 'G', members: [{ value: 'hum_1', display: 'A', $ref: 'https://m.example/scim/v2/Users/hum_1', type: 'User' }] };
const patch = (...Operations: unknown[]) => ({ schemas: [PATCH_OP_SCHEMA], Operations });

describe('SCIM PATCH', () => {
  it('RFC7644-3.5.2.3 Okta deactivation: path-less replace with an object value', async () => {
    expect(await applyPatch('User', user, patch({ op: 'replace', value: { id: 'hum_1', active: false } }))).toMatchObject({ active: false });
  });

  it('Entra deactivation: path "active", capitalised op, boolean or string value', async () => {
    expect(await applyPatch('User', user, patch({ op: 'Replace', path: 'active', value: false }))).toMatchObject({ active: false });
    expect(await applyPatch('User', user, patch({ op: 'Replace', path: 'active', value: 'False' }))).toMatchObject({ active: false });
  });

  it('enterprise department and manager (bare id string from Entra)', async () => {
    const result = await applyPatch('User', user, patch({ op: 'Replace', path: `${ENTERPRISE_SCHEMA}:department`, value: 'Sales' }, { op: 'Add', path: `${ENTERPRISE_SCHEMA}:manager`, value: 'hum_boss' }));
    expect(result[ENTERPRISE_SCHEMA]).toEqual({ department: 'Sales', manager: { value: 'hum_boss' } });
  });

  it('returns the same object when nothing changes', async () => {
    expect(await applyPatch('User', user, patch({ op: 'replace', path: 'active', value: true }))).toBe(user);
  });

  it('group members: add (deduplicated by the caller), remove by filter, remove by value list with $ref null', async () => {
    const added = await applyPatch('Group', group, patch({ op: 'Add', path: 'members', value: [{ $ref: null, value: 'hum_2' }] }));
    expect((added.members as { value: string }[]).map((m) => m.value)).toEqual(['hum_1', 'hum_2']);
    expect((await applyPatch('Group', group, patch({ op: 'remove', path: 'members[value eq "hum_1"]' }))).members ?? []).toEqual([]);
    expect((await applyPatch('Group', group, patch({ op: 'Remove', path: 'members', value: [{ $ref: null, value: 'hum_1' }] }))).members ?? []).toEqual([]);
  });

  it.each([
    ['no Operations', { schemas: [PATCH_OP_SCHEMA] }, 'invalidSyntax'],
    ['wrong schema', { schemas: ['urn:x'], Operations: [{ op: 'add', value: {} }] }, 'invalidSyntax'],
    ['unknown op', patch({ op: 'copy', path: 'active' }), 'invalidSyntax'],
    ['null operation', patch(null), 'invalidSyntax'],
    ['non-string path', patch({ op: 'add', path: 5, value: 1 }), 'invalidPath'],
    ['unknown path', patch({ op: 'replace', path: 'nope', value: 1 }), 'invalidPath'],
    ['wrong type', patch({ op: 'replace', path: 'active', value: 'perhaps' }), 'invalidValue'],
    ['no match for a value filter', patch({ op: 'replace', path: 'emails[type eq "home"].value', value: 'x@y' }), 'noTarget'],
    ['remove without path', patch({ op: 'remove' }), 'noTarget'],
  ])('RFC7644-3.12 refuses %s with %s', async (_label, body, scimType) => {
    await expect(applyPatch('User', user, body)).rejects.toMatchObject({ status: 400, details: { scimType } });
  });

  it('normalises op case and tolerates a missing schemas member', () => {
    expect(normalisePatch('User', { Operations: [{ op: 'REPLACE', path: ' active ', value: 'TRUE' }] })).toEqual({ schemas: [PATCH_OP_SCHEMA], Operations: [{ op: 'replace', path: 'active', value: true }] });
  });

  it('property: arbitrary operations either apply or are refused with a coded 4xx, never another error', async () => {
    const operation = fc.record({ op: fc.oneof(fc.constantFrom('add', 'remove', 'replace'), fc.string({ maxLength: 6 })), path: fc.oneof(fc.constantFrom('active', 'emails', 'emails[type eq "work"].value', 'name.givenName', 'members', 'groups', 'id', `${ENTERPRISE_SCHEMA}:manager`), fc.string({ maxLength: 20 })), value: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ['op'] });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('User', 'Group'), fc.array(operation, { minLength: 1, maxLength: 3 }), async (kind: 'User' | 'Group', operations) => {
        try {
          await applyPatch(kind, kind === 'User' ? user : group, patch(...operations));
        } catch (error) {
          expect(error).toBeInstanceOf(MandateError);
          expect((error as MandateError).status).toBeGreaterThanOrEqual(400);
          expect((error as MandateError).status).toBeLessThan(500);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
