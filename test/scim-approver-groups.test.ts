import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';

const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

// Threat model, review 2: the SCIM token governs every group, so a compromised identity provider could add
// anyone to a group that approves access. Such groups are managed in Mandate unless configured otherwise.
describe.each(BACKENDS)('SCIM and groups that approve access (%s)', (backend) => {
  let server: TestServer;
  let open: TestServer;

  const scim = async (s: TestServer, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${s.url}/scim/v2${path}`, {
      method,
      headers: { authorization: `Bearer ${s.services.config.scimToken!}`, 'content-type': 'application/scim+json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const setup = async (s: TestServer) => {
    const user = (n: string) => scim(s, 'POST', '/Users', { schemas: [USER], userName: `${n}@example.com`, emails: [{ value: `${n}@example.com`, primary: true }], name: { givenName: n, familyName: 'X' } });
    const [alice, mallory] = await Promise.all([user('alice'), user('mallory')]);
    const approvers = await scim(s, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Prod approvers', members: [{ value: alice.body.id }] });
    const gatewayGroup = await scim(s, 'POST', '/Groups', { schemas: [GROUP], displayName: 'MCP approvers', members: [{ value: alice.body.id }] });
    const plain = await scim(s, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Everyone', members: [] });
    expect((await s.api('POST', '/api/v1/access-rules', { pattern: 'tool:prod/*', stages: [{ approvers: [{ kind: 'group', id: approvers.body.id }], required: 1 }] })).status).toBe(201);
    expect((await s.api('PATCH', '/api/v1/mcp/settings', { approverGroupId: gatewayGroup.body.id })).status).toBe(200);
    return { alice: alice.body.id as string, mallory: mallory.body.id as string, approvers: approvers.body.id as string, gatewayGroup: gatewayGroup.body.id as string, plain: plain.body.id as string };
  };
  const addMember = (s: TestServer, group: string, member: string) => scim(s, 'PATCH', `/Groups/${group}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: member }] }] });
  const members = async (s: TestServer, group: string) => ((await scim(s, 'GET', `/Groups/${group}`)).body.members as { value: string }[] | undefined ?? []).map((m) => m.value).sort();

  beforeAll(async () => {
    server = await startTestServer(backend);
    open = await startTestServer(backend, { scimManagesApproverGroups: true });
  });
  afterAll(async () => {
    await server?.stop();
    await open?.stop();
  });

  it('refuses member changes and deletion of approver groups (403, audited), and allows them elsewhere', async () => {
    const ids = await setup(server);
    for (const group of [ids.approvers, ids.gatewayGroup]) {
      const added = await addMember(server, group, ids.mallory);
      expect(added.status).toBe(403);
      expect(String(added.body.detail)).toMatch(/approves access/);
      expect(await members(server, group)).toEqual([ids.alice]);
      const replaced = await scim(server, 'PUT', `/Groups/${group}`, { schemas: [GROUP], displayName: group === ids.approvers ? 'Prod approvers' : 'MCP approvers', members: [{ value: ids.mallory }] });
      expect(replaced.status).toBe(403);
      expect(await members(server, group)).toEqual([ids.alice]);
      expect((await scim(server, 'DELETE', `/Groups/${group}`)).status).toBe(403);
      expect((await scim(server, 'GET', `/Groups/${group}`)).status).toBe(200);
    }
    // Renaming is not a change of who approves.
    expect((await scim(server, 'PATCH', `/Groups/${ids.approvers}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'displayName', value: 'Prod approvers (EU)' }] })).status).toBe(200);
    // Other groups stay the IdP's to manage.
    expect((await addMember(server, ids.plain, ids.mallory)).status).toBe(200);
    expect(await members(server, ids.plain)).toEqual([ids.mallory]);
    // The admin API still manages approver groups (a person's groups).
    expect((await server.api('PATCH', `/api/v1/humans/${ids.mallory}`, { groups: [ids.approvers, ids.plain] })).status).toBe(200);
    expect(await members(server, ids.approvers)).toEqual([ids.alice, ids.mallory].sort());

    await server.services.audit.flush();
    const { items } = (await server.services.audit.list(0, 100_000)) as { items: { action: string; outcome: string; target: string | null; details: Record<string, unknown> }[] };
    const denied = items.filter((e) => e.outcome === 'deny' && e.details.reason === 'approver_group');
    expect(denied.map((e) => e.target)).toEqual(expect.arrayContaining([ids.approvers, ids.gatewayGroup]));
    expect(denied.map((e) => e.action)).toEqual(expect.arrayContaining(['scim.group.members', 'scim.group.delete']));
  });

  it('refuses to reactivate, through SCIM, an offboarded member of an approver group (threat model, review 4)', async () => {
    const user = await scim(server, 'POST', '/Users', { schemas: [USER], userName: 'returning@example.com', emails: [{ value: 'returning@example.com', primary: true }] });
    const id = user.body.id as string;
    const group = await scim(server, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Returning approvers', members: [{ value: id }] });
    expect((await server.api('POST', '/api/v1/access-rules', { pattern: 'tool:returning/*', stages: [{ approvers: [{ kind: 'group', id: group.body.id }], required: 1 }] })).status).toBe(201);
    // The admin offboards them; membership is kept (the record of who they were).
    expect((await server.api('POST', `/api/v1/humans/${id}/offboard`, {})).status).toBe(200);
    const back = await scim(server, 'PATCH', `/Users/${id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: true }] });
    expect(back.status).toBe(403);
    expect((await scim(server, 'GET', `/Users/${id}`)).body.active).toBe(false);
    // Someone in no approver group comes back as before.
    const plain = await scim(server, 'POST', '/Users', { schemas: [USER], userName: 'plain@example.com', emails: [{ value: 'plain@example.com', primary: true }] });
    expect((await scim(server, 'PATCH', `/Users/${plain.body.id as string}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] })).status).toBe(200);
    expect((await scim(server, 'PATCH', `/Users/${plain.body.id as string}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: true }] })).body.active).toBe(true);
  });

  it('with MANDATE_SCIM_MANAGES_APPROVER_GROUPS=true the identity provider manages them', async () => {
    const ids = await setup(open);
    expect((await addMember(open, ids.approvers, ids.mallory)).status).toBe(200);
    expect(await members(open, ids.approvers)).toEqual([ids.alice, ids.mallory].sort());
  });
});
