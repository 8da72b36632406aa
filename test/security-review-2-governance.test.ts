/**
 * Second security review (docs/threat-model.md, "Review 2"): approvals that must not count twice,
 * neither across stages nor through concurrent requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';

describe.each(BACKENDS)('governance approvals under attack (%s)', (backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer(backend);
  }, 60_000);
  afterAll(async () => {
    await s?.stop();
  });

  const json = async <T>(response: Response, status: number): Promise<T> => {
    const body = (await response.json()) as T;
    if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${JSON.stringify(body)}`);
    return body;
  };
  const human = async (name: string) => json<{ id: string }>(await s.api('POST', '/api/v1/humans', { email: `${name}-${backend}@example.com`, displayName: name }), 201);

  it('one approver eligible in two stages satisfies only one of them', async () => {
    const [requester, a, b] = [await human('ms-req'), await human('ms-a'), await human('ms-b')];
    await json(await s.api('POST', '/api/v1/access-rules', { pattern: 'app:two-stage', stages: [{ approvers: [{ kind: 'human', id: a.id }] }, { approvers: [{ kind: 'human', id: a.id }, { kind: 'human', id: b.id }] }] }), 201);
    const request = await json<{ id: string }>(await s.api('POST', '/api/v1/access-requests', { principalId: requester.id, entitlement: 'app:two-stage', durationSeconds: 600, justification: 'x' }), 201);
    const first = await json<{ status: string }>(await s.api('POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: a.id }), 200);
    expect(first.status).toBe('pending');
    const second = await json<{ status: string }>(await s.api('POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: b.id }), 200);
    expect(second.status).toBe('approved');
  });

  it('two eligible approvers approving at the same moment create exactly one grant', async () => {
    const [requester, a, b, c] = [await human('cc-req'), await human('cc-a'), await human('cc-b'), await human('cc-c')];
    const approvers = [a, b, c].map((h) => ({ kind: 'human', id: h.id }));
    await json(await s.api('POST', '/api/v1/access-rules', { pattern: 'app:race', approvers, required: 1 }), 201);
    for (let round = 0; round < 5; round++) {
      const request = await json<{ id: string }>(await s.api('POST', '/api/v1/access-requests', { principalId: requester.id, entitlement: 'app:race', durationSeconds: 600, justification: `r${round}` }), 201);
      const answers = await Promise.all([a, b, c].map((h) => s.api('POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: h.id })));
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses.filter((x) => x >= 500)).toEqual([]);
      expect(statuses.filter((x) => x === 200).length).toBe(1);
      const grants = await json<{ items: { requestId: string | null; status: string }[] }>(await s.api('GET', `/api/v1/grants?principalId=${requester.id}`), 200);
      expect(grants.items.filter((g) => g.requestId === request.id).length).toBe(1);
      const done = await json<{ grantId: string }>(await s.api('GET', `/api/v1/access-requests/${request.id}`), 200);
      await json(await s.api('POST', `/api/v1/access-requests/${request.id}/revoke`, {}), 200);
      expect(done.grantId).toBeTruthy();
    }
  });

  it('an approval and a denial at the same moment: exactly one wins, never a 5xx', async () => {
    const [requester, a, b] = [await human('ad-req'), await human('ad-a'), await human('ad-b')];
    await json(await s.api('POST', '/api/v1/access-rules', { pattern: 'app:approve-deny', approvers: [a, b].map((h) => ({ kind: 'human', id: h.id })), required: 1 }), 201);
    for (let round = 0; round < 5; round++) {
      const request = await json<{ id: string }>(await s.api('POST', '/api/v1/access-requests', { principalId: requester.id, entitlement: 'app:approve-deny', durationSeconds: 600, justification: `r${round}` }), 201);
      const answers = await Promise.all([s.api('POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: a.id }), s.api('POST', `/api/v1/access-requests/${request.id}/deny`, { approverId: b.id })]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
      const final = await json<{ status: string; grantId: string | null }>(await s.api('GET', `/api/v1/access-requests/${request.id}`), 200);
      expect(final.grantId !== null).toBe(final.status === 'approved');
      if (final.status === 'approved') await json(await s.api('POST', `/api/v1/access-requests/${request.id}/revoke`, {}), 200);
    }
  });

  it('concurrent certification answers (keep and revoke) on one item: exactly one is recorded', async () => {
    const owner = await human('cert-owner');
    const agent = await json<{ id: string }>(await s.api('POST', '/api/v1/agents', { name: `cert-agent-${backend}`, ownerId: owner.id }), 201);
    for (let round = 0; round < 4; round++) {
      await json(await s.api('POST', '/api/v1/grants', { principalId: agent.id, entitlement: `app:cert${round}` }), 201);
    }
    const campaign = await json<{ campaign: { id: string } }>(await s.api('POST', '/api/v1/certifications', { name: 'race', scope: { ownerId: owner.id }, deadline: new Date(Date.now() + 86_400_000).toISOString() }), 201);
    const { items } = await json<{ items: { id: string; entitlement: string }[] }>(await s.api('GET', `/api/v1/certifications/${campaign.campaign.id}/items`), 200);
    expect(items.length).toBeGreaterThanOrEqual(4);
    for (const item of items) {
      const answers = await Promise.all(['keep', 'revoke'].map((decision) => s.api('POST', `/api/v1/certifications/${campaign.campaign.id}/items/${item.id}/decision`, { reviewerId: owner.id, decision })));
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409]);
      const winner = (await answers.find((r) => r.status === 200)!.json()) as { status: string };
      const grants = await json<{ items: { entitlement: string; status: string }[] }>(await s.api('GET', `/api/v1/grants?principalId=${agent.id}`), 200);
      const active = grants.items.some((g) => g.entitlement === item.entitlement && g.status === 'active');
      // The recorded answer and the grant agree.
      expect(active).toBe(winner.status === 'keep');
    }
  });
});
