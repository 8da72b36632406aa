import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GOVERNANCE_JOBS } from '../src/governance/index.ts';
import { startTestServer, type TestServer } from './support/server.ts';

interface Item {
  id: string;
  principalId: string;
  entitlement: string;
  reviewerIds: string[];
  status: string;
  grantIds: string[];
  revokedGrantIds: string[];
  decisionSource: string | null;
}

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('governance: access certification campaigns', () => {
  let server: TestServer;
  let receiver: Server;
  let receiverUrl = '';
  const received: Received[] = [];
  let receiverStatus = 204;
  let n = 0;

  const json = async <T>(response: Response, status: number): Promise<T> => {
    const body = (await response.json()) as T;
    if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${JSON.stringify(body)}`);
    return body;
  };
  const human = async (extra: Record<string, unknown> = {}) => json<{ id: string }>(await server.api('POST', '/api/v1/humans', { email: `c${++n}@example.com`, displayName: `C ${n}`, ...extra }), 201);
  const agent = async (ownerId: string, extra: Record<string, unknown> = {}) => json<{ id: string }>(await server.api('POST', '/api/v1/agents', { name: `cert agent ${++n}`, ownerId, ...extra }), 201);
  const grant = async (principalId: string, entitlement: string) => json<{ id: string }>(await server.api('POST', '/api/v1/grants', { principalId, entitlement }), 201);
  const held = async (principalId: string) => (await json<{ entitlements: string[] }>(await server.api('GET', `/api/v1/principals/${principalId}/entitlements`), 200)).entitlements;
  const inDays = (days: number) => new Date(server.services.governance.clock.now().getTime() + days * 86_400_000).toISOString();

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(receiverStatus).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/reminders`;
  });
  afterAll(async () => {
    receiver?.close();
    await server?.stop();
  });

  it('owners review their agents: keep, revoke (at once), delegate; reminders are signed; the deadline revokes the rest; the report tells who decided what', async () => {
    const dept = 'finance';
    const boss = await human();
    const owner = await human({ department: dept, managerId: boss.id });
    const colleague = await human({ department: dept });
    const bot = await agent(owner.id);
    const other = await agent(colleague.id);
    const outsider = await agent((await human({ department: 'sales' })).id);
    await grant(bot.id, 'tool:ledger/read');
    const revokeMe = await grant(bot.id, 'tool:ledger/write');
    await grant(bot.id, 'role:reporting');
    await grant(other.id, 'tool:ledger/read');
    await grant(owner.id, 'role:finance-analyst');
    await grant(outsider.id, 'tool:crm/read');

    const created = await json<{ campaign: { id: string; status: string }; items: number; webhookSecret: string }>(
      await server.api('POST', '/api/v1/certifications', { name: 'Q4 finance', scope: { department: dept }, deadline: inDays(14), webhookUrl: receiverUrl, remindBeforeSeconds: [3 * 86_400, 86_400] }),
      201,
    );
    expect(created.items).toBe(5);
    expect(created.webhookSecret).toMatch(/^whsec_/);
    const id = created.campaign.id;
    expect(JSON.stringify(await json(await server.api('GET', `/api/v1/certifications/${id}`), 200))).not.toContain(created.webhookSecret);

    const { items } = await json<{ items: Item[] }>(await server.api('GET', `/api/v1/certifications/${id}/items`), 200);
    const item = (principalId: string, entitlement: string) => items.find((i) => i.principalId === principalId && i.entitlement === entitlement)!;
    // Owners review their agents; a human's access is reviewed by their manager; nobody reviews their own.
    expect(item(bot.id, 'tool:ledger/read').reviewerIds).toEqual([owner.id]);
    expect(item(other.id, 'tool:ledger/read').reviewerIds).toEqual([colleague.id]);
    expect(item(owner.id, 'role:finance-analyst').reviewerIds).toEqual([boss.id]);
    expect(items.some((i) => i.principalId === outsider.id)).toBe(false);

    const decide = (itemId: string, body: Record<string, unknown>) => server.api('POST', `/api/v1/certifications/${id}/items/${itemId}/decision`, body);
    expect((await json<{ code: string }>(await decide(item(bot.id, 'tool:ledger/read').id, { reviewerId: colleague.id, decision: 'keep' }), 403)).code).toBe('REVIEWER_NOT_ASSIGNED');
    await json(await decide(item(bot.id, 'tool:ledger/read').id, { reviewerId: owner.id, decision: 'keep', comment: 'still syncing' }), 200);
    expect((await json<{ code: string }>(await decide(item(bot.id, 'tool:ledger/read').id, { reviewerId: owner.id, decision: 'revoke' }), 409)).code).toBe('CERTIFICATION_ITEM_DECIDED');

    expect(await held(bot.id)).toContain('tool:ledger/write');
    const revoked = await json<Item>(await decide(item(bot.id, 'tool:ledger/write').id, { reviewerId: owner.id, decision: 'revoke', comment: 'not needed' }), 200);
    expect(revoked.revokedGrantIds).toEqual([revokeMe.id]);
    expect(await held(bot.id)).not.toContain('tool:ledger/write');

    // Delegation hands the item to someone better placed; the delegate then decides.
    const delegated = await json<Item>(await decide(item(bot.id, 'role:reporting').id, { reviewerId: owner.id, decision: 'delegate', to: colleague.id }), 200);
    expect(delegated).toMatchObject({ status: 'pending', reviewerIds: [colleague.id] });
    expect((await json<{ code: string }>(await decide(item(bot.id, 'role:reporting').id, { reviewerId: colleague.id, decision: 'delegate', to: bot.id }), 422)).code).toBe('DELEGATE_INVALID');
    await json(await decide(item(bot.id, 'role:reporting').id, { reviewerId: colleague.id, decision: 'keep' }), 200);

    // Reminders: nothing is due 14 days out; 3 days before, one signed reminder lists pending items by reviewer.
    expect(await server.services.scheduler.runOnce(GOVERNANCE_JOBS.certifications)).toBe(true);
    expect(received).toHaveLength(0);
    server.services.governance.clock.advance(11 * 86_400_000 + 60_000);
    receiverStatus = 503;
    await server.services.governance.certifications.remindDue();
    expect(received).toHaveLength(1);
    expect((await json<{ lastReminderError: string; remindersSent: number[] }>(await server.api('GET', `/api/v1/certifications/${id}`), 200))).toMatchObject({ lastReminderError: 'receiver answered 503', remindersSent: [] });
    receiverStatus = 204;
    await server.services.governance.certifications.remindDue();
    expect(received).toHaveLength(2);
    const reminder = received[1]!;
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(reminder.headers['mandate-signature'])) ?? [];
    const expected = createHmac('sha256', created.webhookSecret).update(`${t}.${reminder.body}`).digest();
    expect(timingSafeEqual(Buffer.from(v1 ?? '', 'hex'), expected)).toBe(true);
    const payload = JSON.parse(reminder.body) as { type: string; pendingItems: number; reviewers: { reviewerId: string; itemIds: string[] }[]; remindBeforeSeconds: number };
    expect(payload).toMatchObject({ type: 'certification.reminder', pendingItems: 2, remindBeforeSeconds: 3 * 86_400 });
    expect(payload.reviewers.map((r) => r.reviewerId).sort()).toEqual([boss.id, colleague.id].sort());
    // Sent once: a further run in the same window sends nothing.
    await server.services.governance.certifications.remindDue();
    expect(received).toHaveLength(2);

    // The deadline passes: unanswered items are revoked (the default), once, and decisions are closed.
    server.services.governance.clock.advance(3 * 86_400_000);
    expect((await json<{ code: string }>(await decide(item(other.id, 'tool:ledger/read').id, { reviewerId: colleague.id, decision: 'keep' }), 409)).code).toBe('CERTIFICATION_CLOSED');
    expect(await server.services.scheduler.runOnce(GOVERNANCE_JOBS.certifications)).toBe(true);
    expect(await held(other.id)).toEqual([]);
    expect(await held(owner.id)).toEqual([]);
    expect(await server.services.governance.certifications.closeDue()).toEqual({ closed: [], revoked: 0, kept: 0 });

    const report = await json<{
      campaign: { status: string };
      counts: Record<string, number>;
      decisions: { principalId: string; entitlement: string; decision: string; decidedBy: string; source: string }[];
      revocations: { principalId: string; entitlement: string; grantIds: string[]; source: string }[];
    }>(await server.api('GET', `/api/v1/certifications/${id}/report`), 200);
    expect(report.campaign.status).toBe('closed');
    expect(report.counts).toEqual({ items: 5, pending: 0, keep: 2, revoke: 3, delegated: 1, unassigned: 0, decidedByReviewers: 3, decidedAtDeadline: 2 });
    expect(report.decisions.find((d) => d.entitlement === 'role:reporting')).toMatchObject({ decision: 'keep', decidedBy: colleague.id, source: 'reviewer' });
    expect(report.revocations.map((r) => `${r.entitlement}:${r.source}`).sort()).toEqual(['role:finance-analyst:deadline', 'tool:ledger/read:deadline', 'tool:ledger/write:reviewer']);

    await server.services.audit.flush();
    const { items: events } = (await server.services.audit.list(0, 100_000)) as { items: { action: string; target: string | null; outcome: string }[] };
    const trail = events.filter((e) => e.action.startsWith('certification.') && (e.target === id || items.some((i) => i.principalId === e.target))).map((e) => `${e.action}:${e.outcome}`);
    expect(trail).toEqual(['certification.create:success', 'certification.keep:success', 'certification.revoke:success', 'certification.delegate:success', 'certification.keep:success', 'certification.remind:failure', 'certification.remind:success', 'certification.close:success']);
  });

  it('onNoAnswer "keep", explicit reviewers (never the holder), tag and owner scopes', async () => {
    const owner = await human();
    const otherOwner = await human();
    const reviewerA = await human();
    const tagged = await agent(owner.id, { tags: ['pci'] });
    const untagged = await agent(otherOwner.id);
    await grant((await agent(otherOwner.id)).id, 'tool:cards/write');
    await grant(tagged.id, 'tool:cards/read');
    await grant(untagged.id, 'tool:cards/read');
    await grant(reviewerA.id, 'tool:cards/read');

    const byTag = await json<{ campaign: { id: string }; items: number }>(await server.api('POST', '/api/v1/certifications', { name: 'PCI', scope: { tag: 'pci' }, reviewers: { humanIds: [reviewerA.id] }, deadline: inDays(7), onNoAnswer: 'keep' }), 201);
    expect(byTag.items).toBe(1);
    const byOwner = await json<{ items: number }>(await server.api('POST', '/api/v1/certifications', { name: 'owner', scope: { ownerId: otherOwner.id }, deadline: inDays(7) }), 201);
    expect(byOwner.items).toBe(2);
    const all = await json<{ campaign: { id: string }; items: number }>(await server.api('POST', '/api/v1/certifications', { name: 'all', scope: { all: true }, reviewers: { humanIds: [reviewerA.id, owner.id] }, deadline: inDays(7), onNoAnswer: 'keep' }), 201);
    const allItems = (await json<{ items: Item[] }>(await server.api('GET', `/api/v1/certifications/${all.campaign.id}/items`), 200)).items;
    expect(allItems.find((i) => i.principalId === reviewerA.id)!.reviewerIds).toEqual([owner.id]);

    server.services.governance.clock.advance(8 * 86_400_000);
    const closed = await server.services.governance.certifications.closeDue();
    expect(closed.closed).toContain(byTag.campaign.id);
    expect(await held(tagged.id)).toEqual(['tool:cards/read']);
    const report = await json<{ counts: { keep: number; decidedAtDeadline: number } }>(await server.api('GET', `/api/v1/certifications/${byTag.campaign.id}/report`), 200);
    expect(report.counts).toMatchObject({ keep: 1, decidedAtDeadline: 1 });
    // The owner-scoped campaign revoked by default.
    expect(await held(untagged.id)).toEqual([]);
  });

  it('refuses bad campaigns with codes', async () => {
    const past = new Date(server.services.governance.clock.now().getTime() - 1000).toISOString();
    expect((await json<{ code: string }>(await server.api('POST', '/api/v1/certifications', { name: 'x', scope: { all: true }, deadline: past }), 400)).code).toBe('CERTIFICATION_DEADLINE_INVALID');
    expect((await json<{ code: string }>(await server.api('POST', '/api/v1/certifications', { name: 'x', scope: { all: true }, deadline: inDays(1), reviewers: { humanIds: ['hum_nobody'] } }), 422)).code).toBe('REVIEWER_INVALID');
    expect((await json<{ code: string }>(await server.api('POST', '/api/v1/certifications', { name: 'x', scope: { all: true }, deadline: inDays(1), webhookUrl: 'ftp://example.com/x' }), 400)).code).toBe('WEBHOOK_URL_INSECURE');
    expect((await json<{ code: string }>(await server.api('POST', '/api/v1/certifications', { name: 'x', scope: { department: 'a', tag: 'b' }, deadline: inDays(1) }), 400)).code).toBe('REQUEST_INVALID');
    expect((await json<{ code: string }>(await server.api('GET', '/api/v1/certifications/crt_nope/report'), 404)).code).toBe('CERTIFICATION_NOT_FOUND');
  });
});
