import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSession } from './support/gateway-agent.ts';
import { startMinimalUpstream, type Rpc } from './support/minimal-upstream.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * An upstream that misbehaves on purpose, by the `message` argument of each tools/call: the gateway
 * relays its answer straight from the upstream's socket to the agent's, so every way that answer can go
 * wrong must still end in a JSON-RPC answer for the agent, an audit record, and a gateway that serves on.
 */
let server: TestServer;
let upstream: { url: string; close(): Promise<void> };
let accessToken: string;
let sessionId: string;
/** Lets the `slow` call's event go. */
let release: () => void = () => undefined;

function answerCall(res: ServerResponse, message: Rpc): boolean {
  const event = (text: string) => `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result: { content: [{ type: 'text', text }] } })}\n\n`;
  switch (message.params?.arguments?.message) {
    case 'impossible-status':
      res.writeHead(799, { 'content-type': 'application/json' }).end('{}');
      return true;
    case 'breaks':
      // Headers and half an event, then the connection is cut.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"jsonrpc":"2.0",');
      setTimeout(() => res.socket?.destroy(), 10);
      return true;
    case 'slow':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      new Promise<void>((resolve) => (release = resolve)).then(() => res.end(event('at last')), () => undefined);
      return true;
    default:
      return false;
  }
}

beforeAll(async () => {
  server = await startTestServer('sqlite');
  upstream = await startMinimalUpstream({ answerCall });
  ({ accessToken, sessionId } = await agentSession(server, { name: 'broken', upstreamUrl: upstream.url, cedar: (id) => `permit (principal == Agent::"${id}", action, resource in McpServer::"demo");` }));
});
afterAll(async () => {
  release();
  await upstream?.close();
  await server?.stop();
});

const call = (message: string) =>
  fetch(`${server.url}/mcp/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: message, method: 'tools/call', params: { name: 'echo', arguments: { message } } }),
  });

async function auditedResult(id: string): Promise<Record<string, unknown> | undefined> {
  await server.services.gateway.flushAudit();
  const { items } = await server.services.audit.list(0, 10_000);
  const decision = items.find((r) => r.action === 'mcp.tools/call' && (r.details.args as { message?: string } | undefined)?.message === id);
  // What became of the call is its outcome record, linked to the decision by its seq.
  const outcome = items.find((r) => r.action === 'mcp.tools/call.result' && r.details.decision === decision?.seq);
  return outcome && { ...outcome.details, result: outcome.outcome };
}

describe('a misbehaving upstream', () => {
  it('an impossible status is a 502 with a JSON-RPC error, audited as a failed upstream call', async () => {
    const response = await call('impossible-status');
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', id: 'impossible-status', error: { message: 'upstream demo gave an invalid answer' } });
    expect(await auditedResult('impossible-status')).toMatchObject({ result: 'incomplete', reason: 'upstream_failed' });
  });

  it('a stream cut mid-event ends with a JSON-RPC error event for the call, audited as incomplete', async () => {
    const response = await call('breaks');
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('"id":"breaks"');
    expect(text).toContain('the upstream stream broke before answering');
    expect(await auditedResult('breaks')).toMatchObject({ result: 'incomplete' });
  });

  it('a slow answer: the agent gets the event stream\'s headers before its first event', async () => {
    // `fetch` resolves on the headers: it would wait forever if they waited for the event.
    const response = await call('slow');
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    release();
    expect(await response.text()).toContain('at last');
    expect(await auditedResult('slow')).toMatchObject({ result: 'ok' });
  });

  it('serves on afterwards', async () => {
    const response = await call('fine');
    expect(await response.text()).toContain('echo: fine');
  });
});
