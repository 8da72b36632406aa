import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BACKENDS } from './support/backends.ts';
import { expectCleanRefusal } from './support/refusals.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Properties of the governance endpoints: whatever a client sends, never a 5xx; a refusal is
 * problem+json with a code; and a refused request changes no governance table (refusals of grants and
 * approvals are recorded in the audit chain by design, so the audit chain is not what is compared).
 */
describe.each(BACKENDS)('governance API under arbitrary input (%s)', (backend) => {
  let server: TestServer;
  const ids: Record<string, string> = {};
  const TABLES = ['grants', 'access_requests', 'access_approvals', 'approval_rules', 'sod_rules', 'certifications', 'certification_items'] as const;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const post = async (path: string, body: unknown) => (await (await server.api('POST', path, body)).json()) as { id: string };
    ids.owner = (await post('/api/v1/humans', { email: 'gov-prop@example.com', displayName: 'Owner' })).id;
    ids.approver = (await post('/api/v1/humans', { email: 'gov-prop2@example.com', displayName: 'Approver' })).id;
    ids.agent = (await post('/api/v1/agents', { name: 'prop agent', ownerId: ids.owner })).id;
    ids.request = (await post('/api/v1/access-requests', { principalId: ids.agent, entitlement: 'tool:x/y', durationSeconds: 600, justification: 'p' })).id;
    const campaign = (await (await server.api('POST', '/api/v1/certifications', { name: 'p', scope: { all: true }, deadline: new Date(Date.now() + 86_400_000).toISOString() })).json()) as { campaign: { id: string } };
    ids.campaign = campaign.campaign.id;
    await post('/api/v1/sod/rules', { name: 'prop rule', entitlements: ['role:a', 'role:b'] });
    await post('/api/v1/grants', { principalId: ids.agent, entitlement: 'role:a' });
  });
  afterAll(() => server.stop());

  const snapshot = async () => {
    const counts: Record<string, number> = {};
    for (const table of TABLES) counts[table] = Number((await server.services.store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const states = await server.services.store.db.selectFrom('grants').select(['id', 'status']).orderBy('id').execute();
    const requests = await server.services.store.db.selectFrom('access_requests').select(['id', 'status']).orderBy('id').execute();
    return JSON.stringify({ counts, states, requests });
  };

  const paths = () => [
    '/api/v1/grants',
    '/api/v1/access-rules',
    '/api/v1/access-requests',
    `/api/v1/access-requests/${ids.request}/approve`,
    `/api/v1/access-requests/${ids.request}/deny`,
    `/api/v1/access-requests/${ids.request}/revoke`,
    '/api/v1/sod/rules',
    '/api/v1/certifications',
    `/api/v1/certifications/${ids.campaign}/items/cri_x/decision`,
  ];

  it('never answers 5xx to arbitrary JSON bodies, and refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths()), fc.jsonValue({ maxDepth: 3 }), async (path, body) => {
        const before = await snapshot();
        const response = await server.api('POST', path, JSON.stringify(body));
        await expectCleanRefusal(response);
        if (response.status >= 400) expect(await snapshot()).toBe(before);
      }),
      { numRuns: 200 },
    );
  });

  const entitlement = () =>
    fc.oneof(
      fc.constantFrom('role:a', 'role:b', 'tool:x/y', 'scope:files.read', 'tool:*', '*', 'role:', ':x', 'role:a b', 'ROLE:a', 'role:"x"'),
      fc.string({ maxLength: 240 }),
      fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ minLength: 1, maxLength: 30 })).map(([k, v]) => `${k}:${v}`),
    );
  const principal = () => fc.oneof(fc.constantFrom(ids.agent!, ids.owner!, ids.approver!, 'agt_00000000000000000000000000'), fc.string({ maxLength: 70 }));
  const time = () => fc.oneof(fc.date({ min: new Date(0), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()), fc.string({ maxLength: 30 }), fc.constant('2026-13-45T99:00:00Z'));

  it('never answers 5xx to well-shaped grant, request and rule bodies with hostile values; refusals write nothing', async () => {
    const bodies = fc.oneof(
      fc.record({ path: fc.constant('/api/v1/grants'), body: fc.record({ principalId: principal(), entitlement: entitlement(), expiresAt: time(), reason: fc.oneof(fc.string({ maxLength: 50 }), fc.constant('\u0000')) }, { requiredKeys: ['principalId', 'entitlement'] }) }),
      fc.record({
        path: fc.constant('/api/v1/access-requests'),
        body: fc.record({ principalId: principal(), entitlement: entitlement(), durationSeconds: fc.oneof(fc.integer({ min: -10, max: 10_000_000 }), fc.double()), justification: fc.oneof(fc.string({ maxLength: 30 }), fc.constant('nul \u0000 byte')), requesterId: principal() }, { requiredKeys: ['principalId', 'entitlement', 'durationSeconds', 'justification'] }),
      }),
      fc.record({
        path: fc.constant('/api/v1/access-rules'),
        body: fc.record(
          {
            pattern: entitlement(),
            approvers: fc.array(fc.oneof(fc.constant({ kind: 'owner' }), fc.constant({ kind: 'manager' }), principal().map((id) => ({ kind: 'human', id })), principal().map((id) => ({ kind: 'group', id }))), { maxLength: 4 }),
            required: fc.integer({ min: -1, max: 30 }),
            maxDurationSeconds: fc.integer({ min: -1, max: 100 * 86_400 }),
          },
          { requiredKeys: ['pattern'] },
        ),
      }),
      fc.record({
        path: fc.constant('/api/v1/sod/rules'),
        body: fc.record({ name: fc.string({ maxLength: 20 }), entitlements: fc.array(entitlement(), { maxLength: 4 }), pairs: fc.array(fc.tuple(entitlement(), entitlement()), { maxLength: 3 }), countDelegation: fc.boolean(), enforce: fc.constantFrom('grant', 'session', 'both', 'x') }, { requiredKeys: ['name'] }),
      }),
      fc.record({
        path: fc.constantFrom(`/api/v1/access-requests/${ids.request}/approve`, `/api/v1/access-requests/${ids.request}/deny`),
        body: fc.record({ approverId: principal(), comment: fc.string({ maxLength: 20 }) }, { requiredKeys: ['approverId'] }),
      }),
      fc.record({
        path: fc.constant('/api/v1/certifications'),
        body: fc.record(
          {
            name: fc.string({ maxLength: 20 }),
            scope: fc.oneof(fc.constant({ all: true }), fc.record({ department: fc.string({ maxLength: 10 }) }), fc.record({ tag: fc.string({ maxLength: 10 }) }), principal().map((ownerId) => ({ ownerId })), fc.constant({})),
            reviewers: fc.oneof(fc.constant('owners'), fc.array(principal(), { maxLength: 3 }).map((humanIds) => ({ humanIds }))),
            deadline: time(),
            onNoAnswer: fc.constantFrom('revoke', 'keep', 'maybe'),
            webhookUrl: fc.oneof(fc.webUrl(), fc.string({ maxLength: 20 }), fc.constant('ftp://x.example/y')),
          },
          { requiredKeys: ['name', 'scope', 'deadline'] },
        ),
      }),
      fc.record({
        path: fc.constant(`/api/v1/certifications/${ids.campaign}/items/cri_x/decision`),
        body: fc.record({ reviewerId: principal(), decision: fc.constantFrom('keep', 'revoke', 'delegate', 'x'), to: principal() }, { requiredKeys: ['reviewerId', 'decision'] }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async ({ path, body }) => {
        const before = await snapshot();
        const response = await server.api('POST', path, body);
        await expectCleanRefusal(response);
        if (response.status >= 400) expect(await snapshot()).toBe(before);
      }),
      { numRuns: 400 },
    );
  });

  it('a NUL character in any field, query or path is a 4xx (PostgreSQL cannot store it), with nothing written', async () => {
    const deadline = new Date(Date.now() + 86_400_000).toISOString();
    const valid: { path: string; body: Record<string, unknown> }[] = [
      { path: '/api/v1/grants', body: { principalId: ids.approver, entitlement: 'role:nul-test', reason: 'r' } },
      { path: '/api/v1/access-requests', body: { principalId: ids.approver, entitlement: 'role:nul-test', durationSeconds: 600, justification: 'j', requesterId: ids.approver } },
      { path: '/api/v1/access-rules', body: { pattern: 'role:nul-*', approvers: [{ kind: 'human', id: ids.approver }] } },
      { path: '/api/v1/sod/rules', body: { name: 'nul rule', description: 'd', entitlements: ['role:n1', 'role:n2'] } },
      { path: '/api/v1/certifications', body: { name: 'nul', scope: { department: 'dept' }, deadline } },
      { path: `/api/v1/access-requests/${ids.request}/deny`, body: { approverId: ids.owner, comment: 'c' } },
    ];
    const nul = fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })).map(([a, b]) => `${a}\u0000${b}`);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...valid), fc.nat(), nul, async ({ path, body }, which, poison) => {
        const keys = Object.keys(body).filter((k) => typeof body[k] === 'string');
        const key = keys[which % keys.length]!;
        const before = await snapshot();
        const response = await server.api('POST', path, { ...body, [key]: poison });
        expect(response.status).toBeGreaterThanOrEqual(400);
        await expectCleanRefusal(response);
        expect(await snapshot()).toBe(before);
        await expectCleanRefusal(await server.api('GET', `/api/v1/grants?principalId=${encodeURIComponent(poison)}`));
        await expectCleanRefusal(await server.api('GET', `/api/v1/access-requests/${encodeURIComponent(poison)}`));
        await expectCleanRefusal(await server.api('DELETE', `/api/v1/grants/${encodeURIComponent(poison)}`));
        await expectCleanRefusal(await server.api('GET', `/api/v1/principals/${encodeURIComponent(poison)}/entitlements`));
      }),
      { numRuns: 60 },
    );
  });

  it('never answers 5xx to arbitrary query strings, path segments and methods on governance routes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/api/v1/grants', '/api/v1/access-requests', '/api/v1/access-rules', '/api/v1/sod/rules', '/api/v1/sod/violations', '/api/v1/certifications', `/api/v1/certifications/${ids.campaign}/items`, '/api/v1/principals'),
        fc.dictionary(fc.constantFrom('principalId', 'entitlement', 'status', 'kind', 'limit', 'cursor', 'reviewerId', 'reason', 'x'), fc.string({ maxLength: 40 })),
        fc.string({ maxLength: 60 }),
        fc.constantFrom('GET', 'DELETE'),
        async (path, query, segment, method) => {
          const before = await snapshot();
          await expectCleanRefusal(await server.api('GET', `${path}?${new URLSearchParams(query)}`));
          const response = await server.api(method, `${path}/${encodeURIComponent(segment)}${method === 'GET' && path === '/api/v1/principals' ? '/entitlements' : ''}`);
          await expectCleanRefusal(response);
          if (response.status >= 400) expect(await snapshot()).toBe(before);
        },
      ),
      { numRuns: 200 },
    );
  });
});
