/**
 * Regression tests for the second security review (docs/threat-model.md, "Review 2"): hostile input to
 * the Cedar engine, SCIM, governance and audit verification.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

const permitAll = 'permit(principal, action, resource);';

describe('Cedar engine with hostile input', () => {
  it('deeply nested policies are refused with 400 POLICY_TOO_COMPLEX and leave the parser working', async () => {
    const hostile = [
      `permit(principal, action, resource) when { ${'{a:'.repeat(150)}1${'}'.repeat(150)} == {} };`,
      `permit(principal, action, resource) when { ${'['.repeat(1000)}1${']'.repeat(1000)} == [] };`,
      `permit(principal, action, resource) when { ${'('.repeat(1000)}true${')'.repeat(1000)} };`,
      `permit(principal, action, resource) when { ${Array(10_000).fill('true').join(' && ')} };`,
      `permit(principal, action, resource) when { ${'if true then true else '.repeat(1000)}true };`,
    ];
    for (const cedar of hostile) {
      for (const [method, path] of [['PUT', '/api/v1/policies'], ['POST', '/api/v1/policies/validate'], ['POST', '/api/v1/policies/preview']] as const) {
        const res = await s.api(method, path, { cedar });
        expect(res.status, `${path} ${cedar.slice(40, 80)}`).toBe(400);
        expect(((await res.json()) as { code: string }).code).toBe('POLICY_TOO_COMPLEX');
      }
    }
    // A schema nested too deeply is refused the same way.
    const schema = `entity A = ${'{a: '.repeat(200)}Long${'}'.repeat(200)};`;
    const v = await s.api('POST', '/api/v1/policies/validate', { cedar: permitAll, schema });
    expect(v.status).toBe(400);
    // The engine still parses and applies ordinary policies afterwards.
    const ok = await s.api('PUT', '/api/v1/policies', { cedar: permitAll });
    expect(ok.status).toBe(200);
  });

  it('bodies nested 10,000 levels deep are 400 REQUEST_TOO_DEEP on every JSON route, not 500', async () => {
    const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    const arr = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;
    const cases: [string, string, string][] = [
      ['POST', '/api/v1/decisions', `{"principal":{"type":"A","id":"x"},"action":{"type":"Action","id":"x"},"resource":{"type":"R","id":"y"},"context":{"a":${deep(10_000)}}}`],
      ['POST', '/api/v1/decisions', `{"principal":{"type":"A","id":"x"},"action":{"type":"Action","id":"x"},"resource":{"type":"R","id":"y"},"context":{"a":${arr(10_000)}}}`],
      ['POST', '/api/v1/entities', `[{"uid":{"type":"A","id":"x"},"attrs":{"a":${deep(10_000)}},"parents":[]}]`],
      ['POST', '/access/v1/evaluation', `{"subject":{"type":"X","id":"x"},"action":{"name":"read"},"resource":{"type":"R","id":"y"},"context":{"a":${deep(10_000)}}}`],
    ];
    for (const [method, path, body] of cases) {
      const res = await s.api(method, path, body);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('REQUEST_TOO_DEEP');
    }
    // Ordinary nesting still works.
    const ok = await s.api('POST', '/api/v1/decisions', `{"principal":{"type":"A","id":"x"},"action":{"type":"Action","id":"x"},"resource":{"type":"R","id":"y"},"context":{"a":${deep(20)}}}`);
    expect(ok.status).toBe(200);
  });

  it('an entity import closing a cycle with already-imported entities is refused and changes nothing', async () => {
    expect((await s.api('PUT', '/api/v1/policies', { cedar: 'permit(principal, action, resource) when { principal in Team::"t3" };' })).status).toBe(200);
    const chain = [0, 1, 2, 3].map((i) => ({ uid: { type: 'Team', id: `t${i}` }, attrs: {}, parents: i < 3 ? [{ type: 'Team', id: `t${i + 1}` }] : [] }));
    expect((await s.api('POST', '/api/v1/entities', chain)).status).toBe(200);
    const decide = async () => ((await (await s.api('POST', '/api/v1/decisions', { principal: { type: 'Team', id: 't0' }, action: { type: 'Action', id: 'x' }, resource: { type: 'R', id: 'y' } })).json()) as { decision: string }).decision;
    expect(await decide()).toBe('allow');
    const cycle = await s.api('POST', '/api/v1/entities', [{ uid: { type: 'Team', id: 't3' }, attrs: {}, parents: [{ type: 'Team', id: 't0' }] }]);
    expect(cycle.status).toBe(400);
    expect(((await cycle.json()) as { code: string }).code).toBe('POLICY_ENTITY_CYCLE');
    expect(await decide()).toBe('allow');
    // Later imports still work.
    expect((await s.api('POST', '/api/v1/entities', [{ uid: { type: 'Team', id: 'other' }, attrs: {}, parents: [] }])).status).toBe(200);
    expect(await decide()).toBe('allow');
  });
});
