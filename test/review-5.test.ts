/**
 * Review 5, second reader: what the hardening fixes still let through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

describe('policy validation covers template links', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
  });
  afterAll(async () => {
    await server?.stop();
  });

  // The link is what names the agent: with a typo in its entity type the forbid silently never matches
  // and the agent it was meant to stop keeps every permission the permit gives it.
  const cedar = 'permit (principal, action, resource);\nforbid (principal == ?principal, action, resource);\n';
  const link = (type: string) => [{ templateId: 'policy1', newId: 'block-agent', values: { '?principal': { type, id: 'agt_1' } } }];

  it('PUT /api/v1/policies refuses a link to an entity type the schema does not know (400 POLICY_INVALID); force applies it, audited', async () => {
    const refused = await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agnet') });
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { code: string; errors: { message: string; policyId: string }[] };
    expect(body.code).toBe('POLICY_INVALID');
    expect(body.errors.map((e) => e.message).join('\n')).toContain('Agnet');
    expect(await (await server.api('POST', '/api/v1/policies/validate', { cedar, links: link('Agnet') })).json()).toMatchObject({ valid: false });
    expect((await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agent') })).status).toBe(200);
    const forced = await server.api('PUT', '/api/v1/policies', { cedar, links: link('Agnet'), force: true });
    expect(forced.status).toBe(200);
    const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; details: Record<string, unknown> }[] };
    expect(audit.items.filter((e) => e.action === 'policy.apply').at(-1)!.details).toMatchObject({ forced: true, validationErrors: 1 });
  });
});

describe('SCIM query strings with U+0000 on PostgreSQL', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('postgres');
  });
  afterAll(async () => {
    await server?.stop();
  });

  // readQuery refuses NUL on the admin API; the SCIM routes read their query themselves, and a filter's
  // value went into SQL, where PostgreSQL text cannot hold it: 500 INTERNAL.
  it.each([
    ['/Users', `filter=${encodeURIComponent('userName eq "a\u0000"')}`, 'invalidFilter'],
    ['/Groups', `filter=${encodeURIComponent('displayName eq "\u0000"')}`, 'invalidFilter'],
    ['/Users', 'attributes=userName%00', 'invalidValue'],
  ])('GET %s?%s is 400 %s, not 500', async (path, query, scimType) => {
    const response = await fetch(`${server.url}/scim/v2${path}?${query}`, { headers: { authorization: `Bearer ${server.services.config.scimToken!}` } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ status: '400', scimType });
  });
});
