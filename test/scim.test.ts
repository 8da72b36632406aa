import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createApp } from '../src/server/index.ts';
import { BACKENDS } from './support/backends.ts';
import { postRaw } from './support/raw-post.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

type Json = Record<string, unknown>;

interface Scim {
  (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  json<T = Json>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; headers: Headers }>;
}

function scimClient(server: TestServer, contentType = 'application/scim+json'): Scim {
  const token = server.services.config.scimToken!;
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/scim/v2${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/scim+json', ...(body !== undefined && { 'content-type': contentType }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  const json = async <T,>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const response = await call(method, path, body, headers);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, headers: response.headers };
  };
  return Object.assign(call, { json });
}

const filterQuery = (filter: string) => `filter=${encodeURIComponent(filter)}`;

async function auditLength(server: TestServer): Promise<number> {
  await server.services.audit.flush();
  const row = await server.services.store.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('max')).executeTakeFirstOrThrow();
  return Number(row.max ?? 0);
}

async function createAgent(server: TestServer, ownerId: string, name: string): Promise<string> {
  const response = await server.api('POST', '/api/v1/agents', { name, ownerId });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function agent(server: TestServer, id: string): Promise<{ status: string; reviewReason: string | null; ownerId: string }> {
  return (await (await server.api('GET', `/api/v1/agents/${id}`)).json()) as { status: string; reviewReason: string | null; ownerId: string };
}

async function findings(server: TestServer, kind: string, subjectId: string): Promise<{ id: string; details: Json }[]> {
  const response = await server.api('GET', `/api/v1/findings?kind=${kind}&subjectId=${subjectId}`);
  return ((await response.json()) as { items: { id: string; details: Json }[] }).items;
}

function expectScimError(response: { status: number; body: unknown; headers: Headers }, status: number, scimType?: string): void {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/scim+json');
  expect(response.body).toMatchObject({ schemas: [ERROR], status: String(status), ...(scimType && { scimType }) });
}

describe.each(BACKENDS)('SCIM 2.0 provisioning on %s', (backend) => {
  let server: TestServer;
  let scim: Scim;
  beforeAll(async () => {
    server = await startTestServer(backend);
    scim = scimClient(server);
  });
  afterAll(() => server.stop());

  it('RFC7644-2 refuses requests without the SCIM token, and the admin token is not a SCIM token', async () => {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${server.adminToken}`, `Basic ${server.services.config.scimToken!}`]) {
      const response = await fetch(`${server.url}/scim/v2/Users`, { headers: authorization ? { authorization } : {} });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expectScimError({ status: response.status, body: await response.json(), headers: response.headers }, 401);
    }
    // …and the SCIM token opens nothing under /api/v1.
    const admin = await fetch(`${server.url}/api/v1/humans`, { headers: { authorization: `Bearer ${server.services.config.scimToken!}` } });
    expect(admin.status).toBe(401);
  });

  it('RFC7644-4 serves ServiceProviderConfig, ResourceTypes and Schemas', async () => {
    const config = await scim.json('GET', '/ServiceProviderConfig');
    expect(config.status).toBe(200);
    expect(config.headers.get('content-type')).toContain('application/scim+json');
    expect(config.body).toMatchObject({ patch: { supported: true }, filter: { supported: true, maxResults: 200 }, bulk: { supported: false }, etag: { supported: true } });
    const types = await scim.json<{ Resources: { id: string; endpoint: string; schemaExtensions: unknown[] }[] }>('GET', '/ResourceTypes');
    expect(types.body.Resources.map((r) => r.endpoint)).toEqual(['/Users', '/Groups']);
    expect((await scim.json('GET', '/ResourceTypes/User')).body).toMatchObject({ schema: USER, schemaExtensions: [{ schema: ENTERPRISE, required: false }] });
    const schemas = await scim.json<{ schemas: string[]; Resources: { id: string; attributes: { name: string }[] }[] }>('GET', '/Schemas');
    expect(schemas.body.schemas).toEqual([LIST]);
    expect(schemas.body.Resources.map((s) => s.id)).toEqual([USER, GROUP, ENTERPRISE]);
    expect(schemas.body.Resources[0]!.attributes.map((a) => a.name)).toEqual(expect.arrayContaining(['userName', 'name', 'emails', 'active', 'groups']));
    expect((await scim.json('GET', `/Schemas/${ENTERPRISE}`)).body).toMatchObject({ id: ENTERPRISE });
    expectScimError(await scim.json('GET', '/Schemas/urn:nope'), 404);
  });

  it('Okta: lookup, create, get, profile PUT, deactivate (leaver), reactivate, group push', async () => {
    const userName = 'okta.user@example.com';
    // Okta first checks whether the user exists (RFC 7644 §3.4.2.2).
    const lookup = await scim.json<{ totalResults: number; Resources: unknown[] }>('GET', `/Users?${filterQuery(`userName eq "${userName}"`)}&startIndex=1&count=100`);
    expect(lookup.status).toBe(200);
    expect(lookup.body).toMatchObject({ schemas: [LIST], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });

    const oktaUser = {
      schemas: [USER],
      userName,
      name: { givenName: 'Okta', familyName: 'User' },
      emails: [{ primary: true, value: userName, type: 'work' }],
      displayName: 'Okta User',
      locale: 'en-US',
      externalId: '00u1abcd',
      groups: [],
      password: 'never-stored-1!',
      active: true,
    };
    const created = await scim.json<Json & { id: string; meta: { location: string; version: string } }>('POST', '/Users', oktaUser);
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(created.body.meta.location);
    expect(created.headers.get('etag')).toBe(created.body.meta.version);
    expect(created.body).toMatchObject({ schemas: [USER], userName, displayName: 'Okta User', active: true, externalId: '00u1abcd', name: { givenName: 'Okta', familyName: 'User' }, emails: [{ value: userName, primary: true }], locale: 'en-US', meta: { resourceType: 'User' } });
    expect(JSON.stringify(created.body)).not.toContain('never-stored');
    const id = created.body.id;
    const human = (await (await server.api('GET', `/api/v1/humans/${id}`)).json()) as { email: string; status: string; attributes: Json };
    expect(human).toMatchObject({ email: userName, status: 'active' });
    expect(JSON.stringify(human.attributes)).not.toContain('never-stored');

    // RFC 7644 §3.3: a second create with the same userName is a uniqueness conflict, and writes nothing.
    const before = await auditLength(server);
    expectScimError(await scim.json('POST', '/Users', { ...oktaUser, externalId: 'other' }), 409, 'uniqueness');
    expect(await auditLength(server)).toBe(before);

    const found = await scim.json<{ totalResults: number; Resources: { id: string }[] }>('GET', `/Users?${filterQuery(`userName eq "${userName.toUpperCase()}"`)}`);
    expect(found.body.totalResults).toBe(1);
    expect(found.body.Resources[0]!.id).toBe(id);
    expect((await scim.json('GET', `/Users/${id}`)).body).toMatchObject({ id, userName });

    const put = await scim.json('PUT', `/Users/${id}`, { ...oktaUser, id, name: { givenName: 'Okta', familyName: 'Renamed' }, displayName: 'Okta Renamed' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ displayName: 'Okta Renamed', name: { familyName: 'Renamed' }, active: true });

    const agentId = await createAgent(server, id, 'okta-agent');
    // Okta deactivates with a path-less replace whose value carries `active` (and sometimes the id).
    const deactivated = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id, active: false } }] });
    expect(deactivated.status).toBe(200);
    expect(deactivated.body).toMatchObject({ active: false });
    expect(await agent(server, agentId)).toMatchObject({ status: 'suspended' });
    expect(await findings(server, 'handover', agentId)).toHaveLength(1);

    const reactivated = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(reactivated.body).toMatchObject({ active: true });

    // Group push.
    const group = await scim.json<{ id: string; members: unknown[] }>('POST', '/Groups', { schemas: [GROUP], displayName: 'Okta Engineering', members: [] });
    expect(group.status).toBe(201);
    const gid = group.body.id;
    const renamed = await scim.json('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: gid, displayName: 'Okta Eng' } }] });
    expect(renamed.body).toMatchObject({ displayName: 'Okta Eng', members: [] });
    const added = await scim.json('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: id, display: userName }] }] });
    expect(added.body).toMatchObject({ members: [{ value: id, display: 'Okta Renamed', type: 'User' }] });
    expect((await scim.json('GET', `/Users/${id}`)).body).toMatchObject({ groups: [{ value: gid, display: 'Okta Eng' }] });
    // A membership change is a mover event: the member's agents are flagged for review.
    expect((await agent(server, agentId)).reviewReason).toContain('group membership changed');
    const removed = await scim.json('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }] });
    expect(removed.body).toMatchObject({ members: [] });
    expect((await scim('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expectScimError(await scim.json('GET', `/Groups/${gid}`), 404);
  });

  it('Entra ID: create with the enterprise extension, attribute PATCHes, manager and department (mover), disable (leaver), delete', async () => {
    const manager = await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'boss@contoso.example', emails: [{ primary: true, type: 'work', value: 'boss@contoso.example' }], name: { formatted: 'The Boss' }, active: true });
    expect(manager.status).toBe(201);
    const userName = 'Test_User_ab6490ee@contoso.example';
    expect((await scim.json<{ totalResults: number }>('GET', `/Users?${filterQuery(`userName eq "${userName}"`)}`)).body.totalResults).toBe(0);

    const entraUser = {
      schemas: [USER, ENTERPRISE],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName,
      active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b@contoso.example' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
      [ENTERPRISE]: { department: 'Engineering', employeeNumber: '42' },
    };
    const created = await scim.json<Json & { id: string }>('POST', '/Users', entraUser);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ schemas: [USER, ENTERPRISE], userName, displayName: 'givenName familyName', [ENTERPRISE]: { department: 'Engineering', employeeNumber: '42' } });
    const id = created.body.id;
    expect(((await (await server.api('GET', `/api/v1/humans/${id}`)).json()) as { email: string }).email).toBe('test_user_fd0ea19b@contoso.example');

    const byExternal = await scim.json<{ Resources: { id: string }[] }>('GET', `/Users?${filterQuery(`externalId eq "${entraUser.externalId}"`)}`);
    expect(byExternal.body.Resources.map((r) => r.id)).toEqual([id]);
    const byEmail = await scim.json<{ Resources: { id: string }[] }>('GET', `/Users?${filterQuery('emails.value eq "TEST_USER_FD0EA19B@contoso.example"')}`);
    expect(byEmail.body.Resources.map((r) => r.id)).toEqual([id]);
    const byWorkEmail = await scim.json<{ Resources: { id: string }[] }>('GET', `/Users?${filterQuery('emails[type eq "work"].value eq "test_user_fd0ea19b@contoso.example"')}`);
    expect(byWorkEmail.body.Resources.map((r) => r.id)).toEqual([id]);

    const agentId = await createAgent(server, id, 'entra-agent');

    // Entra's attribute updates: capitalised ops, value-filtered paths.
    const updated = await scim.json('PATCH', `/Users/${id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@contoso.example' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
        { op: 'Add', path: 'displayName', value: 'Updated Name' },
      ],
    });
    expect(updated.status).toBe(200);
    // The email is kept as sent; Mandate's own copy (the login and lookup key) is lower-cased.
    expect(updated.body).toMatchObject({ emails: [{ value: 'updatedEmail@contoso.example', primary: true }], name: { familyName: 'updatedFamilyName' }, displayName: 'Updated Name' });
    expect(((await (await server.api('GET', `/api/v1/humans/${id}`)).json()) as { email: string }).email).toBe('updatedemail@contoso.example');
    expect((await agent(server, agentId)).reviewReason).toBeNull();

    // Mover: department change, sent as Entra sends it.
    const moved = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: `${ENTERPRISE}:department`, value: 'Sales' }] });
    expect(moved.body).toMatchObject({ [ENTERPRISE]: { department: 'Sales', employeeNumber: '42' } });
    expect((await agent(server, agentId)).reviewReason).toContain('department');
    expect(await findings(server, 'review', agentId)).toHaveLength(1);

    // Manager as a bare id string (Entra), then as a complex value.
    const managed = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: `${ENTERPRISE}:manager`, value: manager.body.id }] });
    expect(managed.status).toBe(200);
    expect(managed.body).toMatchObject({ [ENTERPRISE]: { manager: { value: manager.body.id, displayName: 'The Boss' } } });
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: `${ENTERPRISE}:manager`, value: { value: 'hum_unknown' } }] }), 400, 'invalidValue');

    // Group membership as Entra sends it ($ref null, remove with a value list).
    const group = await scim.json<{ id: string }>('POST', '/Groups', { schemas: [GROUP], externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159', displayName: 'Entra Group', meta: { resourceType: 'Group' }, members: [] });
    expect(group.status).toBe(201);
    const gid = group.body.id;
    const lookup = await scim.json<{ totalResults: number; Resources: Json[] }>('GET', `/Groups?excludedAttributes=members&${filterQuery('displayName eq "entra group"')}`);
    expect(lookup.body.totalResults).toBe(1);
    expect(lookup.body.Resources[0]).not.toHaveProperty('members');
    const add = await scim.json('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: id }, { $ref: null, value: manager.body.id }] }] });
    expect(add.status).toBe(200);
    const membership = await scim.json<{ totalResults: number }>('GET', `/Groups?excludedAttributes=members&${filterQuery(`id eq "${gid}" and members[value eq "${id}"]`)}`);
    expect(membership.body.totalResults).toBe(1);
    const remove = await scim.json<{ members: { value: string }[] }>('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: id }] }] });
    expect(remove.body.members.map((m) => m.value)).toEqual([manager.body.id]);
    const renamed = await scim.json('PATCH', `/Groups/${gid}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Entra Group Renamed' }] });
    expect(renamed.body).toMatchObject({ displayName: 'Entra Group Renamed' });
    expect((await scim.json('GET', `/Groups/${gid}?excludedAttributes=members`)).body).not.toHaveProperty('members');

    // Disable: Entra's path form, with the string boolean older tenants send.
    const disabled = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ active: false });
    expect(await agent(server, agentId)).toMatchObject({ status: 'suspended' });
    const handovers = await findings(server, 'handover', agentId);
    expect(handovers).toHaveLength(1);
    // The manager set over SCIM is proposed as the new owner.
    expect(handovers[0]!.details).toMatchObject({ previousOwnerId: id, proposedOwnerId: manager.body.id });

    // RFC 7644 §3.6: DELETE, then the User is gone.
    expect((await scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expectScimError(await scim.json('GET', `/Users/${id}`), 404);
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: true }] }), 404);
    expect((await scim('DELETE', `/Users/${id}`)).status).toBe(404);
    expect((await scim.json<{ totalResults: number }>('GET', `/Users?${filterQuery(`userName eq "${userName}"`)}`)).body.totalResults).toBe(0);
    expect((await scim.json<{ members: unknown[] }>('GET', `/Groups/${gid}`)).body.members).toHaveLength(1);
    // The same person can be provisioned again: a new User with a new id.
    const again = await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName, active: true });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(id);
  });

  it('a deactivation the form {"op":"replace","path":"active","value":false} triggers the leaver flow', async () => {
    const created = await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'path-form@example.com', active: true });
    expect(created.status).toBe(201);
    const agents = [await createAgent(server, created.body.id, 'a1'), await createAgent(server, created.body.id, 'a2')];
    const response = await scim.json('PATCH', `/Users/${created.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(response.body).toMatchObject({ active: false });
    for (const agentId of agents) {
      expect(await agent(server, agentId)).toMatchObject({ status: 'suspended' });
      expect(await findings(server, 'handover', agentId)).toHaveLength(1);
    }
    // Deactivating again changes nothing and opens no second handover.
    await scim.json('PATCH', `/Users/${created.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(await findings(server, 'handover', agents[0]!)).toHaveLength(1);
  });

  it('PUT without active neither deactivates nor reactivates; PUT with active:false is the leaver flow', async () => {
    const created = await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'put@example.com', emails: [{ value: 'put@example.com' }] });
    const id = created.body.id;
    const agentId = await createAgent(server, id, 'put-agent');
    const put = await scim.json('PUT', `/Users/${id}`, { schemas: [USER], userName: 'put@example.com', displayName: 'Put Person' });
    expect(put.body).toMatchObject({ active: true, displayName: 'Put Person' });
    expect(await agent(server, agentId)).toMatchObject({ status: 'active' });
    const off = await scim.json('PUT', `/Users/${id}`, { schemas: [USER], userName: 'put@example.com', displayName: 'Put Person', active: false });
    expect(off.body).toMatchObject({ active: false });
    expect(await agent(server, agentId)).toMatchObject({ status: 'suspended' });
  });

  it('pages lists with startIndex and count (RFC7644-3.4.2.4) and answers 200 with totalResults', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await scim('POST', '/Users', { schemas: [USER], userName: `page${i}@example.com` })).status).toBe(201);
    }
    const all = await scim.json<{ totalResults: number; Resources: { id: string }[] }>('GET', '/Users?count=200');
    const total = all.body.totalResults;
    expect(all.body.Resources).toHaveLength(total);
    const ids = all.body.Resources.map((r) => r.id);
    const page = await scim.json<{ totalResults: number; startIndex: number; itemsPerPage: number; Resources: { id: string }[] }>('GET', '/Users?startIndex=2&count=2');
    expect(page.body).toMatchObject({ totalResults: total, startIndex: 2, itemsPerPage: 2 });
    expect(page.body.Resources.map((r) => r.id)).toEqual(ids.slice(1, 3));
    // RFC 7644 §3.4.2.4: startIndex below 1 is 1; a negative count is 0.
    expect((await scim.json('GET', '/Users?startIndex=0&count=1')).body).toMatchObject({ startIndex: 1, itemsPerPage: 1 });
    expect((await scim.json('GET', '/Users?count=-5')).body).toMatchObject({ totalResults: total, itemsPerPage: 0, Resources: [] });
    expect((await scim.json('GET', `/Users?startIndex=${total + 10}`)).body).toMatchObject({ totalResults: total, itemsPerPage: 0 });
    expectScimError(await scim.json('GET', '/Users?count=abc'), 400, 'invalidValue');
    const projected = await scim.json<{ Resources: Json[] }>('GET', '/Users?count=1&attributes=userName');
    expect(Object.keys(projected.body.Resources[0]!).sort()).toEqual(['id', 'meta', 'schemas', 'userName']);
  });

  it('RFC7644-3.4.2.2 answers unsupported filters with 400 invalidFilter', async () => {
    for (const filter of ['title eq "x"', 'userName co "a"', 'userName sw "a"', 'not (userName eq "a")', 'displayName eq "x"', 'active eq true', 'userName eq', 'userName eq 5', '((userName eq "a")', 'userName eq "a" or', '']) {
      expectScimError(await scim.json('GET', `/Users?${filterQuery(filter)}`), 400, 'invalidFilter');
    }
    expectScimError(await scim.json('GET', `/Groups?${filterQuery('members[display eq "x"]')}`), 400, 'invalidFilter');
    // Supported combinations still work: an indexed anchor with further conditions.
    expect((await scim.json('GET', `/Users?${filterQuery('userName eq "page1@example.com" and active eq true')}`)).body).toMatchObject({ totalResults: 1 });
    expect((await scim.json('GET', `/Users?${filterQuery('userName eq "page1@example.com" or userName eq "page2@example.com"')}`)).body).toMatchObject({ totalResults: 2 });
    expect((await scim.json('GET', `/Users?${filterQuery('userName eq "page1@example.com" and active eq false')}`)).body).toMatchObject({ totalResults: 0 });
  });

  it('refuses bad bodies with SCIM errors and writes nothing', async () => {
    const before = await auditLength(server);
    expectScimError(await scim.json('POST', '/Users', '{not json'), 400, 'invalidSyntax');
    expectScimError(await scim.json('POST', '/Users', { schemas: [USER] }), 400, 'invalidValue');
    expectScimError(await scim.json('POST', '/Users', { schemas: [USER], userName: 'no-email' }), 400, 'invalidValue');
    expectScimError(await scim.json('POST', '/Users', { schemas: [USER], userName: 'x@example.com', active: 'maybe' }), 400, 'invalidValue');
    expectScimError(await scim.json('POST', '/Groups', { schemas: [GROUP], displayName: 'G', members: [{ value: 'hum_nobody' }] }), 400, 'invalidValue');
    const deep = `{"schemas":["${USER}"],"userName":"deep@example.com","name":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expectScimError(await scim.json('POST', '/Users', deep), 400, 'invalidSyntax');
    const textPlain = await fetch(`${server.url}/scim/v2/Users`, { method: 'POST', headers: { authorization: `Bearer ${server.services.config.scimToken!}`, 'content-type': 'text/plain' }, body: '{}' });
    expectScimError({ status: textPlain.status, body: await textPlain.json(), headers: textPlain.headers }, 415);
    const big = await postRaw(`${server.url}/scim/v2/Users`, server.services.config.scimToken!, JSON.stringify({ schemas: [USER], userName: 'big@example.com', title: 'x'.repeat(2 * 1024 * 1024) }), 'application/scim+json');
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ schemas: [ERROR], status: '413' });
    const user = await scim.json<{ id: string }>('GET', `/Users?${filterQuery('userName eq "page0@example.com"')}`);
    const id = (user.body as unknown as { Resources: { id: string }[] }).Resources[0]!.id;
    const afterSetup = await auditLength(server);
    expect(afterSetup).toBe(before);
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [] }), 400, 'invalidSyntax');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: ['urn:wrong'], Operations: [{ op: 'replace', path: 'active', value: false }] }), 400, 'invalidSyntax');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'frobnicate', path: 'active', value: false }] }), 400, 'invalidSyntax');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'nope', value: 1 }] }), 400, 'invalidPath');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: 'sometimes' }] }), 400, 'invalidValue');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq "home"].value', value: 'x@example.com' }] }), 400, 'noTarget');
    // Two operations, the second bad: the first (a deactivation) must not happen either.
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }, { op: 'replace', path: 'userName', value: 'page1@example.com' }] }), 409, 'uniqueness');
    expect((await scim.json('GET', `/Users/${id}`)).body).toMatchObject({ active: true });
    expect(await auditLength(server)).toBe(before);
  });

  it('RFC7644-3.12 refuses over-long string attributes with 400 invalidValue on POST, PUT and PATCH and writes nothing', async () => {
    const long = (n: number) => 'x'.repeat(n);
    const base = { schemas: [USER, ENTERPRISE], userName: 'bounded@example.com' };
    // Exactly at each limit is accepted.
    const created = await scim.json<{ id: string }>('POST', '/Users', {
      ...base,
      displayName: long(256),
      externalId: long(256),
      title: long(256),
      name: { givenName: long(256), familyName: long(256), formatted: long(256) },
      emails: [{ value: `${long(308)}@example.com`, primary: true }],
      addresses: [{ formatted: long(1024) }],
      [ENTERPRISE]: { department: long(256), employeeNumber: long(256) },
    });
    expect(created.status).toBe(201);
    const { id } = created.body;
    const group = await scim.json<{ id: string }>('POST', '/Groups', { schemas: [GROUP], displayName: long(256), externalId: long(256) });
    expect(group.status).toBe(201);
    const userBefore = (await scim.json('GET', `/Users/${id}`)).body;
    const groupBefore = (await scim.json('GET', `/Groups/${group.body.id}`)).body;
    const before = await auditLength(server);

    const refused = async (method: string, path: string, body: unknown, attribute: string) => {
      const response = await scim.json<{ detail: string; code: string }>(method, path, body);
      expectScimError(response, 400, 'invalidValue');
      expect(response.body.code).toBe('SCIM_INVALID_VALUE');
      expect(response.body.detail, `${method} ${path} ${attribute}`).toContain(attribute);
    };
    // The finding: a 100,000-character givenName was stored.
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', name: { givenName: long(100_000) } }, 'name.givenName');
    await refused('POST', '/Users', { ...base, userName: `${long(309)}@example.com` }, 'userName');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', emails: [{ value: `${long(309)}@example.com` }] }, 'emails.value');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', displayName: long(257) }, 'displayName');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', name: { formatted: long(257) } }, 'name.formatted');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', externalId: long(257) }, 'externalId');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', title: long(257) }, 'title');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', addresses: [{ streetAddress: long(1025) }] }, 'addresses.streetAddress');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', phoneNumbers: [{ value: '1' }, { value: long(1025) }] }, 'phoneNumbers.value');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', [ENTERPRISE]: { department: long(257) } }, 'department');
    await refused('POST', '/Users', { ...base, userName: 'other@example.com', [ENTERPRISE]: { costCenter: long(257) } }, 'costCenter');
    await refused('POST', '/Groups', { schemas: [GROUP], displayName: long(257) }, 'displayName');
    await refused('POST', '/Groups', { schemas: [GROUP], displayName: 'Other', externalId: long(257) }, 'externalId');

    await refused('PUT', `/Users/${id}`, { ...base, title: long(257) }, 'title');
    await refused('PUT', `/Users/${id}`, { ...base, name: { givenName: long(100_000) } }, 'name.givenName');
    await refused('PUT', `/Groups/${group.body.id}`, { schemas: [GROUP], displayName: long(257) }, 'displayName');

    const patch = (path: string, value: unknown, op = 'replace') => ({ schemas: [PATCH], Operations: [{ op, path, value }] });
    await refused('PATCH', `/Users/${id}`, patch('name.givenName', long(257)), 'name.givenName');
    await refused('PATCH', `/Users/${id}`, patch('displayName', long(257)), 'displayName');
    await refused('PATCH', `/Users/${id}`, patch('title', long(257), 'add'), 'title');
    await refused('PATCH', `/Users/${id}`, patch('emails', [{ value: `${long(309)}@example.com`, type: 'home' }], 'add'), 'emails.value');
    await refused('PATCH', `/Users/${id}`, patch(`${ENTERPRISE}:department`, long(257)), 'department');
    await refused('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { nickName: long(257) } }] }, 'nickName');
    await refused('PATCH', `/Groups/${group.body.id}`, patch('displayName', long(257)), 'displayName');
    await refused('PATCH', `/Groups/${group.body.id}`, patch('externalId', long(257)), 'externalId');
    // A refused operation takes the others of its request with it: the deactivation does not happen.
    await refused('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }, { op: 'replace', path: 'title', value: long(257) }] }, 'title');

    expect(await auditLength(server)).toBe(before);
    expect((await scim.json('GET', `/Users/${id}`)).body).toEqual(userBefore);
    expect((await scim.json('GET', `/Groups/${group.body.id}`)).body).toEqual(groupBefore);
    expect((await scim.json<{ totalResults: number }>('GET', `/Users?${filterQuery('userName eq "other@example.com"')}`)).body.totalResults).toBe(0);
  });

  it('a value stored before the limits (or through the admin API) does not block later writes such as the leaver flow', async () => {
    const created = await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'grandfathered@example.com' });
    const { id } = created.body;
    // The admin API's `attributes` are free-form: a long SCIM title arrives this way (or from before the limits).
    const title = 'y'.repeat(5000);
    expect((await server.api('PATCH', `/api/v1/humans/${id}`, { attributes: { scim: { title } } })).status).toBe(200);
    const kept = await scim.json<{ title: string; displayName: string }>('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Kept' }] });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ title, displayName: 'Kept' });
    // Only the stored value may stay: a different long one is still refused.
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: `${title}z` }] }), 400, 'invalidValue');
    const leaver = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(leaver.status).toBe(200);
    expect(leaver.body).toMatchObject({ active: false, title });
  });

  it('RFC7644-3.14 honours If-Match and refuses a stale version with 412', async () => {
    const created = await scim.json<{ id: string; meta: { version: string } }>('POST', '/Users', { schemas: [USER], userName: 'etag@example.com' });
    const { id } = created.body;
    const stale = created.body.meta.version;
    const first = await scim.json<{ meta: { version: string } }>('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'One' }] }, { 'if-match': stale });
    expect(first.status).toBe(200);
    expect(first.body.meta.version).not.toBe(stale);
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Two' }] }, { 'if-match': stale }), 412);
    expect((await scim.json('GET', `/Users/${id}`)).body).toMatchObject({ displayName: 'One' });
  });

  it('concurrent member PATCHes of one group lose no member', async () => {
    const group = await scim.json<{ id: string }>('POST', '/Groups', { schemas: [GROUP], displayName: 'Concurrent' });
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: `conc${i}@example.com` })));
    const responses = await Promise.all(users.map((u) => scim.json('PATCH', `/Groups/${group.body.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: u.body.id }] }] })));
    expect(responses.map((r) => r.status)).toEqual(users.map(() => 200));
    const final = await scim.json<{ members: { value: string }[] }>('GET', `/Groups/${group.body.id}`);
    expect(final.body.members.map((m) => m.value).sort()).toEqual(users.map((u) => u.body.id).sort());
  });

  it('accepts application/json as well as application/scim+json', async () => {
    const plain = scimClient(server, 'application/json; charset=utf-8');
    const created = await plain.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'plain-json@example.com' });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toContain('application/scim+json');
  });

  it('records SCIM writes in the audit chain as actor scim', async () => {
    await server.services.audit.flush();
    const rows = await server.services.store.db.selectFrom('audit_events').select(['actor', 'action']).where('actor', '=', 'scim').execute();
    const actions = new Set(rows.map((r) => r.action));
    for (const action of ['human.create', 'human.update', 'human.offboard', 'human.delete', 'group.create', 'group.update', 'group.delete']) expect(actions).toContain(action);
  });
});

describe('SCIM without a configured token', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server.stop());

  it('is disabled: every request is 401 (fail closed)', async () => {
    const { app } = createApp({ ...server.services, config: { ...server.services.config, scimToken: undefined } });
    for (const token of ['', 'anything', server.services.config.scimToken!]) {
      const response = await app.request('/scim/v2/Users', { headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ schemas: [ERROR], status: '401', detail: expect.stringContaining('MANDATE_SCIM_TOKEN') });
    }
  });
});

/**
 * Property: whatever an IdP (or an attacker holding the token) sends, SCIM answers below 500; a refusal
 * is SCIM error JSON; and a refused request writes nothing (the audit chain does not grow).
 */
describe('SCIM under arbitrary input', () => {
  let server: TestServer;
  let scim: Scim;
  let userId: string;
  let groupId: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    scim = scimClient(server);
    userId = (await scim.json<{ id: string }>('POST', '/Users', { schemas: [USER], userName: 'prop@example.com', [ENTERPRISE]: { department: 'R&D' } })).body.id;
    groupId = (await scim.json<{ id: string }>('POST', '/Groups', { schemas: [GROUP], displayName: 'Prop', members: [{ value: userId }] })).body.id;
    await createAgent(server, userId, 'prop-agent');
  });
  afterAll(() => server.stop());

  async function expectClean(response: Response): Promise<void> {
    expect(response.status).toBeLessThan(500);
    const text = await response.text();
    if (response.status >= 400) {
      expect(response.headers.get('content-type')).toContain('application/scim+json');
      const body = JSON.parse(text) as { schemas?: unknown; status?: unknown; code?: unknown };
      expect(body.schemas).toEqual([ERROR]);
      expect(body.status).toBe(String(response.status));
      expect(typeof body.code).toBe('string');
    }
  }

  const paths = () => [['POST', '/Users'], ['POST', '/Groups'], ['PUT', `/Users/${userId}`], ['PUT', `/Groups/${groupId}`], ['PATCH', `/Users/${userId}`], ['PATCH', `/Groups/${groupId}`]] as const;

  it('never answers 5xx to arbitrary JSON bodies, and refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 5 }), fc.jsonValue({ maxDepth: 4 }), async (which, body) => {
        const [method, path] = paths()[which]!;
        const before = await auditLength(server);
        const response = await scim(method, path, JSON.stringify(body));
        await expectClean(response);
        if (response.status >= 400) expect(await auditLength(server)).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  const scimValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('False', 'True', '', 'hum_nobody', null, [], {}), fc.constant([{ value: 'hum_nobody' }]), fc.string({ maxLength: 40 }));

  it('never answers 5xx to well-shaped PatchOps with hostile paths and values', async () => {
    const operation = fc.record(
      {
        op: fc.oneof(fc.constantFrom('add', 'remove', 'replace', 'Add', 'Remove', 'Replace', 'REPLACE', 'copy', ''), fc.string({ maxLength: 8 })),
        path: fc.oneof(
          fc.constantFrom('active', 'userName', 'displayName', 'emails', 'emails[type eq "work"].value', 'emails[value eq "x"]', 'name.givenName', 'members', 'members[value eq "hum_nobody"]', 'groups', 'id', 'meta', `${ENTERPRISE}:department`, `${ENTERPRISE}:manager`, `${ENTERPRISE}:manager.value`, 'urn:x:y', 'emails[', 'a..b', ''),
          fc.string({ maxLength: 30 }),
        ),
        value: scimValue,
      },
      { requiredKeys: ['op'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(operation, { minLength: 1, maxLength: 4 }), async (isUser, operations) => {
        const before = await auditLength(server);
        const response = await scim('PATCH', isUser ? `/Users/${userId}` : `/Groups/${groupId}`, { schemas: [PATCH], Operations: operations });
        await expectClean(response);
        if (response.status >= 400) expect(await auditLength(server)).toBe(before);
      }),
      { numRuns: 200 },
    );
  });

  it('never answers 5xx to well-shaped Users with hostile values', async () => {
    const user = fc.record(
      {
        schemas: fc.oneof(fc.constant([USER]), fc.constant([USER, ENTERPRISE]), fc.jsonValue({ maxDepth: 1 })),
        userName: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 400 }), fc.integer()),
        displayName: fc.oneof(fc.string({ maxLength: 1100 }), fc.constant(null)),
        emails: fc.oneof(fc.array(fc.record({ value: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 20 })), primary: fc.oneof(fc.boolean(), fc.constantFrom('True', 'yes')), type: fc.string({ maxLength: 5 }) }, { requiredKeys: [] }), { maxLength: 3 }), fc.string()),
        active: fc.oneof(fc.boolean(), fc.constantFrom('False', 'true', 'no', 0)),
        externalId: fc.oneof(fc.string({ maxLength: 40 }), fc.integer()),
        [ENTERPRISE]: fc.record({ department: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()), manager: fc.oneof(fc.constant(userId), fc.string({ maxLength: 10 }), fc.record({ value: fc.string({ maxLength: 10 }) })) }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('POST', 'PUT'), user, async (method, body) => {
        const before = await auditLength(server);
        const response = await scim(method, method === 'POST' ? '/Users' : `/Users/${userId}`, body);
        await expectClean(response);
        if (response.status >= 400) expect(await auditLength(server)).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  it('never answers 5xx to arbitrary filters and list parameters; unsupported filters are 400 invalidFilter', async () => {
    const token = fc.constantFrom('userName', 'externalId', 'emails.value', 'emails[type eq "work"]', 'members[value eq "x"]', 'displayName', 'id', 'eq', 'ne', 'co', 'pr', 'and', 'or', 'not', '(', ')', '[', ']', '"a"', '"a\\"b"', 'true', '5', 'null', ' ', '.', 'urn:ietf:params:scim:schemas:core:2.0:User:userName');
    const filter = fc.oneof(fc.string({ maxLength: 60 }), fc.array(token, { maxLength: 12 }).map((t) => t.join(' ')), fc.string({ unit: 'binary', maxLength: 30 }));
    const number = fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), fc.string({ maxLength: 6 }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/Users', '/Groups'), filter, fc.option(number), fc.option(number), async (path, expression, startIndex, count) => {
        const query = [filterQuery(expression), ...(startIndex !== null ? [`startIndex=${encodeURIComponent(startIndex)}`] : []), ...(count !== null ? [`count=${encodeURIComponent(count)}`] : [])].join('&');
        const response = await scim('GET', `${path}?${query}`);
        expect(response.status).toBeLessThan(500);
        if (response.status >= 400) {
          const body = (await response.json()) as { scimType?: string; schemas: string[] };
          expect(body.schemas).toEqual([ERROR]);
          expect(['invalidFilter', 'invalidValue']).toContain(body.scimType);
        } else await response.arrayBuffer();
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a PATCH whose path filters would expand exponentially, before parsing them', async () => {
    const created = await scim.json('POST', '/Users', { schemas: [USER], userName: 'expand@example.com', emails: [{ value: 'expand@example.com', type: 'work' }] });
    const id = (created.body as { id: string }).id;
    const filter = Array.from({ length: 16 }, (_, i) => `(type eq "work"or value eq "b${i}")`).join(' and ');
    // Without the bound scimmy expands each path into 65,536 branches, seconds of blocked event loop each.
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: `emails[${filter}].display`, value: 'x' }] }), 400, 'invalidFilter');
    // Spread over operations: the bound is for the whole PATCH.
    const small = '(type eq "work" or value eq "b") and (type eq "home" or value eq "c")';
    const operations = Array.from({ length: 5 }, () => ({ op: 'replace', path: `emails[${small}].display`, value: 'x' }));
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: operations }), 400, 'invalidFilter');
  });

  it('refuses values to remove that would write their own filter (scimmy pastes them into one, unescaped)', async () => {
    const created = await scim.json('POST', '/Users', { schemas: [USER], userName: 'remove-inject@example.com', emails: [{ value: 'remove-inject@example.com', type: 'work' }] });
    const id = (created.body as { id: string }).id;
    const injected = `a" and ${Array.from({ length: 14 }, (_, i) => `(value eq "b${i}" or type eq "c${i}")`).join(' and ')} and value eq "z`;
    // Unchecked, this one PATCH exhausted the heap.
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'emails', value: [{ value: injected }] }] }), 400, 'invalidValue');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'emails', value: [{ 'value eq "x" or type': 'y' }] }] }), 400, 'invalidValue');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'emails', value: [{ value: 'x' }, injected] }] }), 400, 'invalidValue');
    expectScimError(await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'emails', value: [[injected]] }] }), 400, 'invalidValue');
    // A plain removal still works.
    const removed = await scim.json('PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'emails', value: [{ value: 'remove-inject@example.com' }] }] });
    expect(removed.status).toBe(200);
  });

  it('refuses exponentially expanding filters before parsing them', async () => {
    const expression = Array.from({ length: 16 }, (_, i) => `(userName eq "a${i}" or externalId eq "b${i}")`).join(' and ');
    // Without the guard scimmy would expand this into 65,536 branches (seconds of CPU); the test timeout bounds it.
    expectScimError(await scim.json('GET', `/Users?${filterQuery(expression)}`), 400, 'invalidFilter');
  });
});
