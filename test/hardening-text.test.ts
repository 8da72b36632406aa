/**
 * Hardening issue, finding 1: text that a UTF-8 store cannot keep as sent (a lone UTF-16 surrogate)
 * broke the audit chain for good. A tool or prompt name of `"\ud800"`, even in a denied call, wrote an
 * audit record whose hash covered the JavaScript string while the store kept U+FFFD; `audit verify`
 * then failed at that row on both stores. Such text is now refused at every entry point, and the audit
 * writer stores and hashes only what the store can keep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStoredChain } from '../src/audit/index.ts';
import { agentSession } from './support/gateway-agent.ts';
import { startMinimalUpstream } from './support/minimal-upstream.ts';
import { postRaw } from './support/raw-post.ts';
import { BACKENDS } from './support/backends.ts';
import { startTestServer, type TestServer } from './support/server.ts';

// JSON text with the escape itself: JSON.stringify of a JavaScript string would write the same, but
// spelling it out keeps the test honest about what goes over the wire.
const LONE = '\\ud800';

describe.each(BACKENDS)('lone surrogates on %s', (backend) => {
  let server: TestServer;
  let upstream: Awaited<ReturnType<typeof startMinimalUpstream>>;
  let agent: Awaited<ReturnType<typeof agentSession>>;
  let calls = 0;

  beforeAll(async () => {
    server = await startTestServer(backend);
    upstream = await startMinimalUpstream({ answerCall: () => ((calls += 1), false) });
    agent = await agentSession(server, { name: `text-${backend}`, upstreamUrl: upstream.url, cedar: (id) => `permit (principal == Agent::"${id}", action, resource);` });
  }, 60_000);
  afterAll(async () => {
    await server.stop();
    await upstream.close();
  });

  const mcp = (body: string) =>
    fetch(`${server.url}/mcp/demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${agent.accessToken}`, 'mcp-session-id': agent.sessionId, 'mcp-protocol-version': '2025-06-18', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });

  it.each([
    ['a tool name', `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"${LONE}","arguments":{}}}`],
    ['a prompt name', `{"jsonrpc":"2.0","id":7,"method":"prompts/get","params":{"name":"x${LONE}"}}`],
    ['a tool argument', `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"${LONE}"}}}`],
    ['an argument key', `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"${LONE}":"x"}}}`],
    ['a low surrogate alone', `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"\\udfff","arguments":{}}}`],
  ])('an MCP request with one in %s is refused as invalid params, forwarded nowhere, and the chain verifies', async (_what, body) => {
    const before = calls;
    const response = await mcp(body);
    expect(response.status).toBe(400);
    const answer = (await response.json()) as { id: unknown; error: { code: number } };
    expect(answer).toMatchObject({ id: 7, error: { code: -32602 } });
    expect(calls).toBe(before);
    expect(await verifyStoredChain(server.services.store)).toMatchObject({ ok: true });
  });

  it('a well-formed pair (an emoji, escaped) still goes through', async () => {
    const response = await mcp('{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"message":"\\ud83d\\ude00"}}}');
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('😀');
  });

  it('an admin displayName with one is refused with 400 and nothing is stored', async () => {
    const response = await postRaw(`${server.adminUrl}/api/v1/humans`, server.adminToken, `{"email":"lone-${backend}@example.com","displayName":"A${LONE}"}`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'REQUEST_INVALID' });
    const listed = await server.api('GET', `/api/v1/humans?email=lone-${backend}@example.com`);
    expect(((await listed.json()) as { items: unknown[] }).items).toEqual([]);
  });

  it('a SCIM user with one is refused as invalidValue', async () => {
    const response = await fetch(`${server.url}/scim/v2/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.services.config.scimToken}`, 'content-type': 'application/scim+json' },
      body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"lone${LONE}@example.com"}`,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ scimType: 'invalidValue' });
  });

  it('an AuthZEN evaluation with one is refused before it is decided or logged', async () => {
    const response = await postRaw(`${server.url}/access/v1/evaluation`, server.adminToken, `{"subject":{"type":"Agent","id":"${LONE}"},"action":{"name":"x"},"resource":{"type":"Doc","id":"d"}}`);
    expect(response.status).toBe(400);
    expect(await verifyStoredChain(server.services.store)).toMatchObject({ ok: true });
  });

  it('text that reaches the audit writer another way is stored as hashed: the chain verifies', async () => {
    // A claim in a signed JWT, an upstream's answer: no entry point sees these as JSON text.
    const { audit } = server.services;
    await audit.append({ actor: 'agent:\ud800', action: 'test.\udc00', target: 'demo/\ud800x\u0000', outcome: 'deny', details: { name: '\ud800', ['\udfff']: ['\ud83d', 'ok'] } });
    await server.services.store.transaction((tx) => audit.appendIn(tx, { actor: 'admin', action: 'test.tx', target: '\ud800', outcome: 'success', details: { v: 'x\udbff' } }));
    expect(await verifyStoredChain(server.services.store)).toMatchObject({ ok: true });
  });
});
