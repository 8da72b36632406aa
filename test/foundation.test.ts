import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from './support/backends.ts';
import { runCli as cli } from './support/cli.ts';
import { postRaw } from './support/raw-post.ts';
import { startTestServer, type TestServer } from './support/server.ts';


describe.each(BACKENDS)('foundation end to end on %s', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend);
  });
  afterAll(() => server.stop());

  it('answers health and readiness, and publishes its OpenAPI document', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const doc = (await (await fetch(`${server.url}/api/v1/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/humans', '/api/v1/agents', '/api/v1/humans/{id}/offboard', '/api/v1/findings', '/api/v1/audit']));
  });

  it('refuses the admin API without the admin token', async () => {
    const response = await fetch(`${server.url}/api/v1/agents`, { headers: { authorization: 'Bearer wrong' } });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(await response.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
  });

  it('offboarding an owner suspends their agents and opens a handover to the manager; the handover transfers', async () => {
    const manager = (await (await server.api('POST', '/api/v1/humans', { email: 'manager@example.com', displayName: 'Manager' })).json()) as { id: string };
    const created = await server.api('POST', '/api/v1/humans', { email: 'Owner@Example.com', displayName: 'Owner', department: 'eng', managerId: manager.id });
    expect(created.status).toBe(201);
    const owner = (await created.json()) as { id: string; email: string };
    expect(owner.email).toBe('owner@example.com');

    const agentResponse = await server.api('POST', '/api/v1/agents', { name: 'crm-agent', ownerId: owner.id, modelProvider: 'anthropic', tags: ['crm'] });
    expect(agentResponse.status).toBe(201);
    const agent = (await agentResponse.json()) as { id: string; status: string };
    expect(agent.status).toBe('active');

    const byEmail = (await (await server.api('GET', '/api/v1/humans?email=owner@example.com')).json()) as { items: { id: string }[]; next: string | null };
    expect(byEmail.items.map((h) => h.id)).toEqual([owner.id]);
    const owned = (await (await server.api('GET', `/api/v1/agents?ownerId=${owner.id}&status=active`)).json()) as { items: { id: string }[] };
    expect(owned.items.map((a) => a.id)).toEqual([agent.id]);

    const offboard = await server.api('POST', `/api/v1/humans/${owner.id}/offboard`);
    expect(offboard.status).toBe(200);
    expect(await offboard.json()).toMatchObject({ human: { status: 'inactive' }, suspended: [agent.id] });
    expect(await (await server.api('GET', `/api/v1/agents/${agent.id}`)).json()).toMatchObject({ status: 'suspended', statusReason: 'owner offboarded' });

    const findings = (await (await server.api('GET', `/api/v1/findings?kind=handover&subjectId=${agent.id}`)).json()) as { items: { id: string; details: Record<string, unknown> }[] };
    expect(findings.items).toHaveLength(1);
    expect(findings.items[0]!.details).toMatchObject({ previousOwnerId: owner.id, proposedOwnerId: manager.id });

    // A new agent for an inactive owner is refused with a code, and nothing is written.
    const refused = await server.api('POST', '/api/v1/agents', { name: 'late-agent', ownerId: owner.id });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ code: 'IDENTITY_OWNER_INACTIVE' });
    // Resuming before the handover is refused too: nobody would answer for it.
    expect((await server.api('POST', `/api/v1/agents/${agent.id}/resume`)).status).toBe(409);

    const resolved = await server.api('POST', `/api/v1/handovers/${findings.items[0]!.id}/resolve`, { action: 'transfer' });
    expect(resolved.status).toBe(200);
    expect(await resolved.json()).toMatchObject({ finding: { status: 'resolved' }, identity: { ownerId: manager.id, status: 'suspended' } });
    expect(await (await server.api('POST', `/api/v1/agents/${agent.id}/resume`, { reason: 'new owner checked it' })).json()).toMatchObject({ status: 'active' });
  });

  it('rejects missing owners and malformed bodies with codes', async () => {
    const missing = await server.api('POST', '/api/v1/agents', { name: 'x', ownerId: 'hum_doesnotexist' });
    expect(missing.status).toBe(422);
    expect(await missing.json()).toMatchObject({ code: 'IDENTITY_OWNER_NOT_FOUND' });
    const notJson = await server.api('POST', '/api/v1/agents', '{"name":');
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ code: 'REQUEST_JSON_INVALID' });
    const huge = await postRaw(`${server.url}/api/v1/humans`, server.adminToken, JSON.stringify({ email: 'big@example.com', displayName: 'x'.repeat(2 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    expect(JSON.parse(huge.body)).toMatchObject({ code: 'REQUEST_TOO_LARGE' });
    // Without Content-Length (chunked) the limit is counted while the body is read.
    const hugeChunked = await postRaw(`${server.url}/api/v1/humans`, server.adminToken, JSON.stringify({ email: 'big@example.com', displayName: 'x'.repeat(2 * 1024 * 1024) }), 'application/json', { chunked: true });
    expect(hugeChunked.status).toBe(413);
    expect(JSON.parse(hugeChunked.body)).toMatchObject({ code: 'REQUEST_TOO_LARGE' });
    const smallChunked = await postRaw(`${server.url}/api/v1/humans`, server.adminToken, JSON.stringify({ email: 'chunked@example.com', displayName: 'Chunked' }), 'application/json', { chunked: true });
    expect(smallChunked.status).toBe(201);
    expect((await (await server.api('GET', '/api/v1/humans?email=big@example.com')).json()) as unknown).toMatchObject({ items: [] });
    const unknownField = await server.api('POST', '/api/v1/humans', { email: 'u@example.com', displayName: 'U', isAdmin: true });
    expect(unknownField.status).toBe(400);
    expect(await (await server.api('GET', '/api/v1/humans?email=u@example.com')).json()).toMatchObject({ items: [] });
  });

  it('pages through lists with next', async () => {
    const owner = (await (await server.api('POST', '/api/v1/humans', { email: 'pager@example.com', displayName: 'Pager' })).json()) as { id: string };
    for (let i = 0; i < 5; i++) expect((await server.api('POST', '/api/v1/agents', { name: `a${i}`, ownerId: owner.id })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page = (await (await server.api('GET', `/api/v1/agents?ownerId=${owner.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json()) as { items: { name: string }[]; next: string | null };
      seen.push(...page.items.map((a) => a.name));
      cursor = page.next;
    }
    expect(seen).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
  });

  it('records every change in an audit chain that verifies, and names a row altered in the database', async () => {
    const page = (await (await server.api('GET', '/api/v1/audit?after=0&limit=500')).json()) as { items: { seq: number; action: string }[] };
    expect(page.items.map((e) => e.action)).toEqual(expect.arrayContaining(['human.create', 'agent.create', 'human.offboard', 'handover.resolve', 'agent.resume']));
    const ok = await cli(server, ['audit', 'verify', '--json']);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true });

    const victim = page.items.find((e) => e.action === 'human.offboard')!;
    await server.services.store.db.updateTable('audit_events').set({ details: '{"suspended":[]}' }).where('seq', '=', victim.seq).execute();
    const broken = await cli(server, ['audit', 'verify']);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain(`BROKEN at seq ${victim.seq}`);

    const exported = await cli(server, ['audit', 'export', '--format', 'jsonl']);
    expect(exported.status).toBe(0);
    const [header, ...lines] = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as { seq: number; type?: string });
    expect(header!.type).toBe('mandate.audit.export');
    expect(lines.map((l) => l.seq)).toEqual(page.items.map((e) => e.seq));
  });
});
