import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/audit/index.ts';
import { BACKENDS, type Backend } from './support/backends.ts';
import { agentSession } from './support/gateway-agent.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Hardening finding 4: nothing reaches an upstream before the record of its decision is durable, and a
 * call whose decision cannot be recorded is refused, never forwarded. The upstream looks into the store
 * itself at the moment a call arrives.
 */
describe.each(BACKENDS)('decision records come first (%s)', (backend: Backend) => {
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startMinimalUpstream>>;
  let accessToken: string;
  let sessionId: string;
  /** Per message the upstream received: whether its decision record was already in the store. */
  const arrived = new Map<string, boolean>();

  const decisionOf = async (message: string): Promise<AuditRecord | undefined> => {
    const { items } = await server.services.audit.list(0, 10_000);
    return items.find((e) => e.action === 'mcp.tools/call' && (e.details.args as { message?: string } | undefined)?.message === message);
  };

  beforeAll(async () => {
    server = await startTestServer(backend);
    upstream = await startMinimalUpstream({
      answerCall: (res, message) => {
        const text = String(message.params?.arguments?.message);
        // Answer only once the store has been looked at: what it holds now is what a crash would leave.
        void decisionOf(text).then((record) => {
          arrived.set(text, record !== undefined && record.outcome === 'allow');
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text: `echo: ${text}` }] } })}\n\n`);
        });
        return true;
      },
    });
    ({ accessToken, sessionId } = await agentSession(server, { name: 'first', upstreamUrl: upstream.url, cedar: (id) => `permit (principal == Agent::"${id}", action, resource in McpServer::"demo");` }));
  }, 60_000);
  afterAll(async () => {
    await upstream?.close();
    await server?.stop();
  });

  const post = (body: unknown, accept = 'application/json, text/event-stream') =>
    fetch(`${server.url}/mcp/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify(body),
    });
  const call = (message: string) => ({ jsonrpc: '2.0', id: message, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

  it('the decision record of a call is in the store before the upstream receives it; its outcome follows, linked by seq', async () => {
    const answers = await Promise.all([post(call('first-sse')), post(call('first-json'), 'application/json')]);
    for (const answer of answers) expect(await answer.text()).toContain('echo: first-');
    for (const message of ['first-sse', 'first-json']) expect(arrived.get(message), message).toBe(true);

    await server.services.gateway.flushAudit();
    const decision = (await decisionOf('first-sse'))!;
    expect(decision.details).toMatchObject({ args: { message: 'first-sse' }, policies: ['policy0'] });
    expect(decision.details).not.toHaveProperty('result');
    const { items } = await server.services.audit.list(decision.seq, 10_000);
    const outcome = items.find((e) => e.action === 'mcp.tools/call.result' && e.details.decision === decision.seq);
    expect(outcome).toMatchObject({ target: 'demo/echo', outcome: 'ok', details: { argsDigest: decision.details.argsDigest, upstreamStatus: 200, session: sessionId } });
    expect(outcome!.details).not.toHaveProperty('args');
  });

  it('a call whose decision record cannot be written is refused with STORE_UNAVAILABLE and never forwarded; calls pass again once the store recovers', async () => {
    const db = server.services.store.db;
    // A real write failure in the store, for this call's record only.
    if (backend === 'sqlite') {
      await sql`create trigger refuse_audit before insert on audit_events when new.details like '%refuse-me%' begin select raise(abort, 'disk full'); end`.execute(db);
    } else {
      await sql`create function refuse_audit() returns trigger language plpgsql as $$ begin if new.details like '%refuse-me%' then raise exception 'disk full'; end if; return new; end $$`.execute(db);
      await sql`create trigger refuse_audit before insert on audit_events for each row execute function refuse_audit()`.execute(db);
    }
    try {
      for (const [message, accept] of [['refuse-me-sse', undefined], ['refuse-me-json', 'application/json']] as const) {
        const refused = await post(call(message), accept);
        expect(refused.status).toBe(503);
        expect(await refused.json()).toMatchObject({ id: message, error: { code: -32008, data: { code: 'STORE_UNAVAILABLE' } } });
        expect(arrived.has(message)).toBe(false);
      }
    } finally {
      await sql`drop trigger refuse_audit${sql.raw(backend === 'postgres' ? ' on audit_events' : '')}`.execute(db);
    }
    expect(await decisionOf('refuse-me-sse')).toBeUndefined();
    // The refusal recorded while unhealthy is the probe that heals the gateway.
    let answer = '';
    for (let i = 0; i < 20 && !answer.includes('echo: recovered'); i += 1) {
      answer = await (await post(call('recovered'))).text();
      await server.services.gateway.flushAudit();
    }
    expect(answer).toContain('echo: recovered');
    expect(arrived.get('recovered')).toBe(true);
  });
});
