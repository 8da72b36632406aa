import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startTestServer, type TestServer } from './support/server.ts';

const POLICIES = `
// Agents whose owner works in engineering may call the echo tool.
permit (principal is Agent, action == Action::"tools/call", resource == Tool::"everything/echo")
when { principal.owner.department == "eng" && principal.status == "active" };

// Application policies over imported entities (an AuthZEN PEP in front of a todo app).
permit (principal is user, action == Action::"can_read_todos", resource is todo);
permit (principal is user, action == Action::"can_update_todo", resource is todo)
when { principal.roles.contains("editor") && resource has ownerID && resource.ownerID == principal.email };
forbid (principal is user, action, resource is todo) when { context has blocked && context.blocked };
`;

const ENTITIES = [
  { uid: { type: 'user', id: 'rick' }, attrs: { email: 'rick@citadel', roles: ['admin', 'editor'] }, parents: [] },
  { uid: { type: 'user', id: 'morty' }, attrs: { email: 'morty@citadel', roles: ['viewer'] }, parents: [] },
  { uid: { type: 'todo', id: 't1' }, attrs: { ownerID: 'rick@citadel' }, parents: [] },
  { uid: { type: 'todo', id: 't2' }, attrs: { ownerID: 'morty@citadel' }, parents: [] },
];

describe('policy decision point and the AuthZEN API', () => {
  let server: TestServer;
  let agentId: string;
  const authzen = (path: string, body: unknown, headers: Record<string, string> = {}) => server.api('POST', `/access/v1/${path}`, body, headers);

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    const owner = (await (await server.api('POST', '/api/v1/humans', { email: 'eng@example.com', displayName: 'Eng', department: 'eng' })).json()) as { id: string };
    agentId = ((await (await server.api('POST', '/api/v1/agents', { name: 'echo-agent', ownerId: owner.id })).json()) as { id: string }).id;
    expect((await server.api('POST', '/api/v1/entities', ENTITIES)).status).toBe(200);
  });
  afterAll(() => server.stop());

  it('denies everything before any policy is applied (default deny)', async () => {
    const response = await authzen('evaluation', { subject: { type: 'user', id: 'rick' }, action: { name: 'can_read_todos' }, resource: { type: 'todo', id: 't1' } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ decision: false });
  });

  it('refuses a policy set with a syntax error, naming line and column, and keeps the active one', async () => {
    const response = await server.api('PUT', '/api/v1/policies', { cedar: 'permit (principal, action, resource);\nforbid (principal action, resource);' });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { code: string; line: number; column: number };
    expect(problem.code).toBe('POLICY_PARSE');
    expect(problem.line).toBe(2);
    expect(problem.column).toBeGreaterThan(0);
    expect(await (await server.api('GET', '/api/v1/policies')).json()).toMatchObject({ version: 0 });
  });

  it('applies a version and decides AuthZEN requests with it; the decision names its policies when asked', async () => {
    const applied = await server.api('PUT', '/api/v1/policies', { cedar: POLICIES, note: 'first', force: true });
    expect(applied.status).toBe(200);
    expect(await applied.json()).toMatchObject({ version: 1, mode: 'enforce', policies: 4 });

    const read = await authzen('evaluation', { subject: { type: 'user', id: 'morty' }, action: { name: 'can_read_todos' }, resource: { type: 'todo', id: 't1' } }, { 'x-request-id': 'req-42' });
    expect(read.headers.get('x-request-id')).toBe('req-42');
    expect(await read.json()).toEqual({ decision: true });

    const explained = await server.api('POST', '/access/v1/evaluation?explain=true', { subject: { type: 'user', id: 'rick' }, action: { name: 'can_update_todo' }, resource: { type: 'todo', id: 't1' } });
    expect(await explained.json()).toMatchObject({ decision: true, context: { reason_admin: { policies: ['policy2'] }, policy_version: 1 } });
  });

  it('merges subject and resource properties over stored entities for one request (the request wins)', async () => {
    const asOwner = { subject: { type: 'user', id: 'rick' }, action: { name: 'can_update_todo' }, resource: { type: 'todo', id: 't2', properties: { ownerID: 'rick@citadel' } } };
    expect(await (await authzen('evaluation', asOwner)).json()).toEqual({ decision: true });
    // The stored entity is unchanged afterwards.
    expect(await (await authzen('evaluation', { ...asOwner, resource: { type: 'todo', id: 't2' } })).json()).toEqual({ decision: false });
    expect(await (await authzen('evaluation', { ...asOwner, context: { blocked: true } })).json()).toEqual({ decision: false });
  });

  it('AUTHZEN-7 batch evaluations take top-level defaults and honour each evaluations_semantic', async () => {
    const base = { subject: { type: 'user', id: 'rick' }, action: { name: 'can_update_todo' } };
    const evaluations = [{ resource: { type: 'todo', id: 't1' } }, { resource: { type: 'todo', id: 't2' } }, { action: { name: 'can_read_todos' }, resource: { type: 'todo', id: 't2' } }];
    const all = await (await authzen('evaluations', { ...base, evaluations })).json();
    expect(all).toEqual({ evaluations: [{ decision: true }, { decision: false }, { decision: true }] });
    const denyFirst = await (await authzen('evaluations', { ...base, evaluations, options: { evaluations_semantic: 'deny_on_first_deny' } })).json();
    expect(denyFirst).toEqual({ evaluations: [{ decision: true }, { decision: false }] });
    const permitFirst = await (await authzen('evaluations', { ...base, evaluations, options: { evaluations_semantic: 'permit_on_first_permit' } })).json();
    expect(permitFirst).toEqual({ evaluations: [{ decision: true }] });
    const missing = await authzen('evaluations', { evaluations: [{ resource: { type: 'todo', id: 't1' } }] });
    expect(missing.status).toBe(400);
  });

  it('searches subjects, resources and actions', async () => {
    const resources = await (await authzen('search/resource', { subject: { type: 'user', id: 'rick' }, action: { name: 'can_update_todo' }, resource: { type: 'todo' } })).json();
    expect(resources).toEqual({ results: [{ type: 'todo', id: 't1' }], page: { next_token: '' } });
    const subjects = await (await authzen('search/subject', { subject: { type: 'user' }, action: { name: 'can_read_todos' }, resource: { type: 'todo', id: 't2' } })).json();
    expect(subjects).toEqual({ results: [{ type: 'user', id: 'morty' }, { type: 'user', id: 'rick' }], page: { next_token: '' } });
    const actions = await (await authzen('search/action', { subject: { type: 'user', id: 'rick' }, resource: { type: 'todo', id: 't1' } })).json();
    expect(actions).toEqual({ results: [{ name: 'can_read_todos' }, { name: 'can_update_todo' }], page: { next_token: '' } });
  });

  it('decides over the identity registry, kept current by change events', async () => {
    const request = { principal: { type: 'Agent', id: agentId }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: 'everything/echo' } };
    expect(await (await server.api('POST', '/api/v1/decisions', request)).json()).toMatchObject({ decision: 'allow', reasons: ['policy0'] });
    expect((await server.api('POST', `/api/v1/agents/${agentId}/suspend`, { reason: 'test' })).status).toBe(200);
    expect(await (await server.api('POST', '/api/v1/decisions', request)).json()).toMatchObject({ decision: 'deny' });
    expect((await server.api('POST', `/api/v1/agents/${agentId}/resume`)).status).toBe(200);
    const explained = (await (await server.api('POST', '/api/v1/decisions', { ...request, explain: true })).json()) as { decision: string; explanation: { reads: unknown[] }[] };
    expect(explained.decision).toBe('allow');
    expect(JSON.stringify(explained.explanation)).toContain('department');
  });

  it('log-only mode decides and records but enforces nothing; a previous version can be restored', async () => {
    const logOnly = await server.api('PUT', '/api/v1/policies', { cedar: 'forbid (principal, action, resource);', mode: 'log-only' });
    expect(await logOnly.json()).toMatchObject({ version: 2, mode: 'log-only' });
    const answer = await (await authzen('evaluation', { subject: { type: 'user', id: 'morty' }, action: { name: 'can_read_todos' }, resource: { type: 'todo', id: 't1' } })).json();
    expect(answer).toEqual({ decision: true, context: { mode: 'log-only', policy_decision: false, policy_version: 2 } });
    // Version 1 is in the application's own vocabulary (applied with force): restoring it needs force too.
    expect((await server.api('POST', '/api/v1/policies/versions/1/activate', { force: true })).status).toBe(200);
    expect(await (await server.api('GET', '/api/v1/policies')).json()).toMatchObject({ version: 1, mode: 'enforce' });
    const versions = (await (await server.api('GET', '/api/v1/policies/versions')).json()) as { items: { version: number; active: boolean }[] };
    expect(versions.items.map((v) => [v.version, v.active])).toEqual([[2, false], [1, true]]);
  });

  it("validates policies against Mandate's schema by default, or against a given one", async () => {
    const typo = await (await server.api('POST', '/api/v1/policies/validate', { cedar: 'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.ownr == "x" };' })).json();
    expect(typo).toMatchObject({ valid: false, schema: 'mandate', issues: [{ policyId: 'policy0', severity: 'error', line: 1 }] });
    // The registry's optional attributes must be tested with `has` before use.
    const unsafe = 'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.owner.department == "eng" };';
    expect(await (await server.api('POST', '/api/v1/policies/validate', { cedar: unsafe })).json()).toMatchObject({ valid: false });
    const safe = 'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.owner has department && principal.owner.department == "eng" && context.args has q };';
    expect(await (await server.api('POST', '/api/v1/policies/validate', { cedar: safe })).json()).toMatchObject({ valid: true, schema: 'mandate', issues: [] });
    const own = await (await server.api('POST', '/api/v1/policies/validate', { cedar: 'permit (principal is user, action, resource is todo);', schema: 'entity user; entity todo; action read appliesTo { principal: user, resource: todo };' })).json();
    expect(own).toMatchObject({ valid: true, schema: 'request' });
  });

  it('records every decision in the audit chain with the request needed to replay it', async () => {
    await server.services.audit.flush();
    const page = (await (await server.api('GET', '/api/v1/audit?after=0&limit=1000')).json()) as { items: { action: string; outcome: string; details: Record<string, unknown> }[] };
    const decisions = page.items.filter((e) => e.action === 'decision');
    expect(decisions.length).toBeGreaterThanOrEqual(10);
    expect(decisions.some((d) => d.outcome === 'deny')).toBe(true);
    expect(decisions[0]!.details).toMatchObject({ source: 'authzen', request: { principal: { type: 'user' } } });
    expect(page.items.map((e) => e.action)).toEqual(expect.arrayContaining(['policy.apply', 'policy.activate', 'policy.entities.import']));
  });

  it('requires a bearer token the PDP accepts', async () => {
    const response = await fetch(`${server.url}/access/v1/evaluation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(401);
    const config = (await (await fetch(`${server.url}/.well-known/authzen-configuration`)).json()) as Record<string, string>;
    expect(config.access_evaluation_endpoint).toBe(`${server.services.config.publicUrl}/access/v1/evaluation`);
  });

  it('answers malformed AuthZEN requests with 400 and a code, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('evaluation', 'evaluations', 'search/subject', 'search/resource', 'search/action'), fc.jsonValue({ maxDepth: 4 }), async (path, body) => {
        const response = await authzen(path, JSON.stringify(body));
        expect(response.status).toBeLessThan(500);
        if (response.status !== 200) expect(((await response.json()) as { code?: string }).code).toBeTypeOf('string');
        else await response.arrayBuffer();
      }),
      { numRuns: 200 },
    );
    const shaped = fc.record({ subject: fc.record({ type: fc.string({ maxLength: 10 }), id: fc.string({ maxLength: 10 }), properties: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })) }), action: fc.record({ name: fc.string({ maxLength: 10 }) }), resource: fc.record({ type: fc.constantFrom('todo', 'user', ''), id: fc.string({ maxLength: 5 }) }), context: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 })) });
    await fc.assert(
      fc.asyncProperty(shaped, async (body) => {
        const response = await authzen('evaluation', body);
        expect(response.status).toBeLessThan(500);
        await response.arrayBuffer();
      }),
      { numRuns: 200 },
    );
  });
});

describe('policy impact preview', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
    await server.api('POST', '/api/v1/entities', ENTITIES);
    await server.api('PUT', '/api/v1/policies', { cedar: POLICIES, force: true });
  });
  afterAll(() => server.stop());

  it('replays recorded decisions against a draft and reports exactly the ones that would change', async () => {
    const ask = (subject: string, action: string, todo: string) =>
      server.api('POST', '/access/v1/evaluation', { subject: { type: 'user', id: subject }, action: { name: action }, resource: { type: 'todo', id: todo } });
    for (const [s, a, t] of [['rick', 'can_update_todo', 't1'], ['morty', 'can_update_todo', 't2'], ['morty', 'can_read_todos', 't1'], ['rick', 'can_read_todos', 't2']] as const) await ask(s, a, t);
    // Draft: reading todos now needs the viewer role, and everyone may update their own todos.
    const draft = `
      permit (principal is user, action == Action::"can_read_todos", resource is todo) when { principal.roles.contains("viewer") };
      permit (principal is user, action == Action::"can_update_todo", resource is todo) when { resource.ownerID == principal.email };`;
    const response = await server.api('POST', '/api/v1/policies/preview', { cedar: draft });
    expect(response.status).toBe(200);
    const report = (await response.json()) as { replayed: number; changed: number; becameAllow: number; becameDeny: number; decisions: { before: string; after: string; request: { principal: { id: string }; action: { id: string } } }[] };
    expect(report.replayed).toBe(4);
    expect(report).toMatchObject({ changed: 2, becameAllow: 1, becameDeny: 1 });
    expect(report.decisions.map((d) => [d.request.principal.id, d.request.action.id, d.before, d.after])).toEqual([
      ['morty', 'can_update_todo', 'deny', 'allow'],
      ['rick', 'can_read_todos', 'allow', 'deny'],
    ]);
    // The draft did not go live.
    expect(await (await server.api('GET', '/api/v1/policies')).json()).toMatchObject({ version: 1 });
    expect((await server.api('POST', '/api/v1/policies/preview', { cedar: 'permit(' })).status).toBe(400);
  });
});

describe('policy templates', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(() => server.stop());

  it('a template ("agent may call tool T") is linked per agent and tool, stored with the version, and restorable', async () => {
    // Templates take ids like every policy: policy0, policy1, … in file order.
    const template = 'permit (principal == ?principal, action == Action::"tools/call", resource == ?resource);';
    const links = [
      { templateId: 'policy0', newId: 'a1-echo', values: { '?principal': { type: 'Agent', id: 'a1' }, '?resource': { type: 'Tool', id: 'srv/echo' } } },
      { templateId: 'policy0', newId: 'a2-search', values: { '?principal': { type: 'Agent', id: 'a2' }, '?resource': { type: 'Tool', id: 'srv/search' } } },
    ];
    const applied = await server.api('PUT', '/api/v1/policies', { cedar: template, links });
    expect(applied.status).toBe(200);
    const decide = async (agent: string, tool: string) =>
      ((await (await server.api('POST', '/api/v1/decisions', { principal: { type: 'Agent', id: agent }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: tool } })).json()) as { decision: string; reasons: string[] });
    expect(await decide('a1', 'srv/echo')).toMatchObject({ decision: 'allow', reasons: ['a1-echo'] });
    expect((await decide('a1', 'srv/search')).decision).toBe('deny');
    expect((await decide('a2', 'srv/search')).decision).toBe('allow');
    expect(await (await server.api('GET', '/api/v1/policies')).json()).toMatchObject({ version: 1, links });

    // A version without links, then the first one restored with its links.
    await server.api('PUT', '/api/v1/policies', { cedar: template });
    expect((await decide('a1', 'srv/echo')).decision).toBe('deny');
    await server.api('POST', '/api/v1/policies/versions/1/activate');
    expect((await decide('a1', 'srv/echo')).decision).toBe('allow');

    // A link to a missing template is refused and nothing changes.
    const bad = await server.api('PUT', '/api/v1/policies', { cedar: template, links: [{ templateId: 'nope', newId: 'x', values: {} }] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'POLICY_LINK' });
    expect(await (await server.api('GET', '/api/v1/policies')).json()).toMatchObject({ version: 1 });
  });
});
