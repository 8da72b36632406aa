import { describe, expect, it } from 'vitest';
import type { Group, Human } from '../types.ts';
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA } from './constants.ts';
import { groupFromScim, groupToScim, project, userFromScim, userToScim, versionOf } from './mapping.ts';

const human: Human = {
  id: 'hum_1',
  email: 'babs@example.com',
  userName: 'bjensen',
  displayName: 'Babs Jensen',
  department: 'Engineering',
  managerId: 'hum_boss',
  status: 'active',
  externalId: 'ext-1',
  groups: ['grp_1'],
  attributes: { scim: { name: { givenName: 'Barbara', familyName: 'Jensen' }, emails: [{ value: 'Babs@Example.com', type: 'work' }, { value: 'home@example.com', type: 'home' }], title: 'Tour Guide', [ENTERPRISE_SCHEMA]: { employeeNumber: '701984' } }, other: 1 },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-02T00:00:00.000Z',
  deactivatedAt: null,
};

describe('SCIM mapping', () => {
  it('RFC7643-4.1 maps a full User with the enterprise extension', () => {
    const state = userFromScim({
      schemas: [USER_SCHEMA, ENTERPRISE_SCHEMA],
      id: 'client-chosen',
      userName: ' bjensen ',
      name: { givenName: 'Barbara', familyName: 'Jensen' },
      emails: [{ value: 'home@example.com', type: 'home' }, { value: 'Babs@Example.com', type: 'work', primary: 'True' }],
      active: 'False',
      password: 'secret-1!',
      title: 'Tour Guide',
      [ENTERPRISE_SCHEMA]: { department: 'Engineering', manager: 'hum_boss', employeeNumber: '701984' },
    });
    expect(state).toMatchObject({ userName: 'bjensen', displayName: 'Barbara Jensen', email: 'babs@example.com', active: false, department: 'Engineering', managerId: 'hum_boss', externalId: null });
    expect(state.extra).toMatchObject({ title: 'Tour Guide', [ENTERPRISE_SCHEMA]: { employeeNumber: '701984' } });
    expect(JSON.stringify(state.extra)).not.toContain('secret');
    expect(state.extra).not.toHaveProperty('id');
  });

  it('falls back to userName as the email, and refuses a User without any email', () => {
    expect(userFromScim({ userName: 'only@example.com' })).toMatchObject({ email: 'only@example.com', displayName: 'only@example.com', active: undefined });
    expect(() => userFromScim({ userName: 'nobody' })).toThrowError(expect.objectContaining({ details: { scimType: 'invalidValue' } }) as Error);
    expect(() => userFromScim([])).toThrowError(expect.objectContaining({ details: { scimType: 'invalidSyntax' } }) as Error);
    expect(() => userFromScim({ userName: 7 })).toThrowError(expect.objectContaining({ details: { scimType: 'invalidValue' } }) as Error);
  });

  it('renders a human: columns win over stored attributes, the primary email is Mandate\'s', () => {
    const resource = userToScim({ ...human, attributes: { scim: { ...(human.attributes.scim as object), id: 'forged', active: false } } }, { baseUrl: 'https://m.example/scim/v2', groups: [{ id: 'grp_1', displayName: 'Eng' }], manager: { id: 'hum_boss', displayName: 'Boss' } });
    expect(resource).toMatchObject({
      schemas: [USER_SCHEMA, ENTERPRISE_SCHEMA],
      id: 'hum_1',
      userName: 'bjensen',
      active: true,
      emails: [{ value: 'Babs@Example.com', primary: true }, { value: 'home@example.com', primary: false }],
      groups: [{ value: 'grp_1', display: 'Eng', $ref: 'https://m.example/scim/v2/Groups/grp_1' }],
      [ENTERPRISE_SCHEMA]: { department: 'Engineering', employeeNumber: '701984', manager: { value: 'hum_boss', displayName: 'Boss' } },
      meta: { resourceType: 'User', location: 'https://m.example/scim/v2/Users/hum_1' },
    });
    expect((resource.meta as { version: string }).version).toBe(versionOf(resource));
  });

  it('maps groups; nested groups and unnamed members are refused', () => {
    expect(groupFromScim({ schemas: [GROUP_SCHEMA], displayName: 'G', members: [{ value: 'hum_1' }, { value: 'hum_1' }] })).toEqual({ displayName: 'G', externalId: null, members: ['hum_1'] });
    expect(groupFromScim({ displayName: 'G' }).members).toBeUndefined();
    expect(() => groupFromScim({ displayName: 'G', members: [{ value: 'grp_2', type: 'Group' }] })).toThrowError(expect.objectContaining({ details: { scimType: 'invalidValue' } }) as Error);
    expect(() => groupFromScim({ displayName: 'G', members: [{ display: 'x' }] })).toThrowError(expect.objectContaining({ details: { scimType: 'invalidValue' } }) as Error);
    const group: Group = { id: 'grp_1', displayName: 'G', externalId: null, members: ['hum_1'], createdAt: 'c', updatedAt: 'u' };
    expect(groupToScim(group, { baseUrl: 'https://m.example/scim/v2', names: new Map([['hum_1', 'A']]) })).toMatchObject({ members: [{ value: 'hum_1', display: 'A', type: 'User' }] });
  });

  it('RFC7644-3.4.2.5 projects attributes and excludedAttributes, always keeping id, schemas and meta', () => {
    const resource = { schemas: ['s'], id: 'i', meta: {}, userName: 'u', name: { givenName: 'g', familyName: 'f' }, members: [1] };
    expect(project(resource, ['userName', 'name.givenName'], undefined)).toEqual({ schemas: ['s'], id: 'i', meta: {}, userName: 'u', name: { givenName: 'g' } });
    expect(project(resource, undefined, ['members', 'id'])).toEqual({ schemas: ['s'], id: 'i', meta: {}, userName: 'u', name: { givenName: 'g', familyName: 'f' } });
  });
});
