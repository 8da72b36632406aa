/**
 * Regression tests for the fourth security review (docs/threat-model.md, "Review 4"): entity imports
 * against the registry's own entities.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { serverForFile } from './support/server.ts';

const server = serverForFile();

async function json<T = Record<string, string>>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await server().api(method, path, body);
  if (response.status >= 300) throw new Error(`${method} ${path} → ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

describe('entity imports and the registry', () => {
  let human: string;
  const decide = async (resource: string) =>
    ((await json<{ decision: string }>('POST', '/api/v1/decisions', { principal: { type: 'Human', id: human }, action: { type: 'Action', id: 'read' }, resource: { type: 'Doc', id: resource } })).decision);
  const stored = async () => (await server().services.store.db.selectFrom('policy_entities').select(['type', 'id']).execute()).map((r) => `${r.type}::${r.id}`).sort();

  beforeAll(async () => {
    human = (await json('POST', '/api/v1/humans', { email: 'importer@example.com', displayName: 'Importer' })).id!;
    await json('PUT', '/api/v1/policies', { cedar: 'forbid (principal, action, resource) when { resource in Folder::"secret" };\npermit (principal, action, resource);', force: true });
    await json('POST', '/api/v1/entities', [
      { uid: { type: 'Folder', id: 'secret' }, attrs: {}, parents: [] },
      { uid: { type: 'Doc', id: 'd1' }, attrs: {}, parents: [{ type: 'Folder', id: 'secret' }] },
    ]);
    expect(await decide('d1')).toBe('deny');
  });

  it('an import closing a cycle through a registry entity (a role granted to a human) is refused and changes nothing', async () => {
    // The grant makes Role::"auditor" a parent of the human (registry projection); the import would make
    // the human a parent of that role. Applied on top of the live entities it used to fail half-way:
    // stored, yet every imported entity dropped from the decision point (the forbid above stopped
    // matching) and every later import refused.
    await json('POST', '/api/v1/grants', { principalId: human, entitlement: 'role:auditor' });
    const before = await stored();
    const cycle = await server().api('POST', '/api/v1/entities', [{ uid: { type: 'Role', id: 'auditor' }, attrs: {}, parents: [{ type: 'Human', id: human }] }]);
    expect(cycle.status).toBe(400);
    expect(((await cycle.json()) as { code: string }).code).toBe('POLICY_ENTITY_CYCLE');
    expect(await stored()).toEqual(before);
    expect(await decide('d1')).toBe('deny');
    // Later imports still work, and the forbid still applies to what they add.
    await json('POST', '/api/v1/entities', [{ uid: { type: 'Doc', id: 'd2' }, attrs: {}, parents: [{ type: 'Folder', id: 'secret' }] }]);
    expect(await decide('d2')).toBe('deny');
    expect(await decide('d1')).toBe('deny');
  });

  it('an imported entity with a registry entity\'s uid is stored but the registry\'s wins, and nothing breaks', async () => {
    // Groups come from the identity provider (SCIM).
    const created = await fetch(`${server().url}/scim/v2/Groups`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server().services.config.scimToken}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'importers', members: [{ value: human }] }),
    });
    expect(created.status).toBe(201);
    const group = (await created.json()) as { id: string };
    // As the registry has it, the human is in the group; the import would put the group under the human.
    await json('POST', '/api/v1/entities', [{ uid: { type: 'Group', id: group.id }, attrs: {}, parents: [{ type: 'Human', id: human }] }]);
    expect(await decide('d1')).toBe('deny');
    await json('POST', '/api/v1/entities', [{ uid: { type: 'Doc', id: 'd3' }, attrs: {}, parents: [{ type: 'Folder', id: 'secret' }] }]);
    expect(await decide('d3')).toBe('deny');
  });
});

describe('entity rebuilds', () => {
  it('a rebuild that started before an import cannot install its older store after the import\'s', async () => {
    const pdp = server().services.pdp;
    // A source that holds the next rebuild until the test lets it go: it stands in for a slow read.
    let hold: Promise<void> | undefined;
    let entered: () => void = () => undefined;
    let left: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const outside = new Promise<void>((resolve) => (left = resolve));
    let release: () => void = () => undefined;
    await pdp.addEntitySource({ name: 'held', topics: [], load: async () => {
      if (hold) {
        const waiting = hold;
        hold = undefined;
        entered();
        await waiting;
        left();
      }
      return [];
    } });
    hold = new Promise<void>((resolve) => (release = resolve));
    // Rebuild A reads the imported entities (without Team::"late"), then waits in the source.
    server().services.store.events.deliver({ topic: 'resync', data: {} });
    await inside;
    const importing = pdp.importEntities([{ uid: { type: 'Team', id: 'late' }, attrs: {}, parents: [] }], 'test');
    const stored = () => server().services.store.db.selectFrom('policy_entities').select('id').where('type', '=', 'Team').where('id', '=', 'late').executeTakeFirst();
    while (!(await stored())) await new Promise((resolve) => setTimeout(resolve, 5));
    // Give a rebuild for the import the chance to finish first (it used to run beside A, and then A,
    // finishing last, put back what it had read before the import). Now it waits for A.
    for (let i = 0; i < 50 && pdp.entities.getUid('Team', 'late') === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    // Only now does A go on, with what it read before the import.
    release();
    await importing;
    await outside;
    await new Promise((resolve) => setImmediate(resolve));
    expect(pdp.entities.getUid('Team', 'late')).toBeDefined();
  });
});
