import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expectCleanRefusal } from './support/refusals.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Property: whatever a client sends to the admin API, the answer is never a 5xx; a refusal is
 * problem+json with a stable code; and a refused request writes nothing (the audit chain does not grow).
 */
describe('admin API under arbitrary input', () => {
  let server: TestServer;
  let ownerId: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    ownerId = ((await (await server.api('POST', '/api/v1/humans', { email: 'prop@example.com', displayName: 'Prop' })).json()) as { id: string }).id;
  });
  afterAll(() => server.stop());

  const auditLength = async () => {
    await server.services.audit.flush();
    const rows = await server.services.store.db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('max')).executeTakeFirstOrThrow();
    return Number(rows.max ?? 0);
  };

  const postPaths = ['/api/v1/humans', '/api/v1/agents', '/api/v1/workloads', '/api/v1/humans/{owner}/offboard', '/api/v1/agents/agt_00000000000000000000000000/suspend', '/api/v1/handovers/fnd_x/resolve'];

  it('never answers 5xx to arbitrary JSON bodies, and refusals write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...postPaths.filter((p) => !p.includes('offboard'))), fc.jsonValue({ maxDepth: 3 }), async (path, body) => {
        const before = await auditLength();
        const response = await server.api('POST', path, JSON.stringify(body));
        await expectCleanRefusal(response);
        if (response.status >= 400) expect(await auditLength()).toBe(before);
      }),
      { numRuns: 150 },
    );
  });

  it('never answers 5xx to well-shaped agent bodies with hostile values', async () => {
    const agentBody = fc.record(
      {
        name: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()),
        ownerId: fc.oneof(fc.constant(ownerId), fc.string({ maxLength: 80 })),
        tags: fc.array(fc.oneof(fc.string({ maxLength: 120 }), fc.constant('')), { maxLength: 60 }),
        purpose: fc.option(fc.string({ maxLength: 2100 })),
        modelProvider: fc.option(fc.string({ unit: 'grapheme', maxLength: 120 })),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(agentBody, async (body) => {
        await expectCleanRefusal(await server.api('POST', '/api/v1/agents', body));
      }),
      { numRuns: 150 },
    );
  });

  it('never answers 5xx to arbitrary query strings and path segments', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/api/v1/humans', '/api/v1/agents', '/api/v1/findings', '/api/v1/audit'), fc.dictionary(fc.constantFrom('email', 'limit', 'cursor', 'ownerId', 'status', 'after', 'kind', 'tag', 'x'), fc.string({ maxLength: 40 })), fc.string({ maxLength: 60 }), async (path, query, segment) => {
        await expectCleanRefusal(await server.api('GET', `${path}?${new URLSearchParams(query)}`));
        await expectCleanRefusal(await server.api('GET', `${path}/${encodeURIComponent(segment)}`));
      }),
      { numRuns: 150 },
    );
  });

  it('rejects bodies that are not JSON, or not declared as JSON', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'), async (raw, type) => {
        const response = await server.api('POST', '/api/v1/humans', raw, { 'content-type': type });
        await expectCleanRefusal(response);
      }),
      { numRuns: 100 },
    );
  });
});

describe('NUL characters on PostgreSQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
  });
  afterAll(() => server.stop());

  it('are refused with 400 in bodies, keys and queries, not a database error', async () => {
    const body = await server.api('POST', '/api/v1/humans', { email: 'nul@example.com', displayName: 'a\u0000b' });
    expect(body.status).toBe(400);
    expect(await body.json()).toMatchObject({ code: 'REQUEST_INVALID' });
    const query = await server.api('GET', `/api/v1/humans?email=${encodeURIComponent('x\u0000@example.com')}`);
    expect(query.status).toBe(400);
    const key = await server.api('POST', '/api/v1/humans', JSON.stringify({ email: 'nul2@example.com', displayName: 'x', attributes: { 'k\u0000': 1 } }));
    expect(key.status).toBe(400);
    const path = await server.api('GET', '/api/v1/humans/hum_%00x');
    expect(path.status).toBe(400);
    expect(await path.json()).toMatchObject({ code: 'REQUEST_PATH_INVALID' });
  });
});
