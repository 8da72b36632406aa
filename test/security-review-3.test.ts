import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoUpstream, type DemoUpstream } from '../src/gateway/index.ts';
import { postRaw } from './support/raw-post.ts';
import { agentSession } from './support/gateway-agent.ts';
import { startTestServer, type TestServer } from './support/server.ts';

// Regression tests for the third security review (docs/threat-model.md, "Review 3 (2026-11-23)"):
// `/mcp/{server}` served by Node's request listener ahead of hono, and what changed with it.

let server: TestServer;
let upstream: DemoUpstream;
let accessToken: string;
let sessionId: string;
let host: string;

/** Sends a raw HTTP/1.1 request (with `Connection: close`) and returns the status and the headers and body as text. */
function rawRequest(raw: string): Promise<{ status: number; text: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(raw));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), text: answer }));
  });
}

function mcpPost(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/mcp/demo`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, ...headers },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  server = await startTestServer('sqlite');
  upstream = await startDemoUpstream();
  host = new URL(server.services.config.publicUrl).host;
  ({ accessToken, sessionId } = await agentSession(server, { name: 'r3', upstreamUrl: upstream.url, cedar: (id) => `permit (principal == Agent::"${id}", action, resource in McpServer::"demo");` }));
  expect(sessionId).toMatch(/^mcs_/);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

describe('security review 3: /mcp served by the Node listener', () => {
  it('an access token whose JOSE header carries a control character is a 401 with a clean challenge (RFC 6750 §3), not a crashed process', async () => {
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // A control character made Node's writeHead throw outside any handler (the process exited); a
    // character above U+00FF made the Response constructor throw (a 500).
    for (const alg of ['x\u0001y', 'x\u0100y']) {
      const forged = `${b64({ alg, typ: 'at+jwt' })}.${b64({ sub: 'x' })}.c2ln`;
      const { status, text } = await rawRequest(`POST /mcp/demo HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${forged}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      expect(status, JSON.stringify(alg)).toBe(401);
      const challenge = /^www-authenticate: (.*)$/im.exec(text)?.[1] ?? '';
      expect(challenge).toContain('error="invalid_token"');
      // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E only.
      expect(/error_description="([^"]*)"/.exec(challenge)?.[1]).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
    }
    // And the server still answers.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('the body limit is decided before authentication, as on every other route: 413 and the connection closed', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(2 * 1024 * 1024) } } });
    const refused = await postRaw(`${server.url}/mcp/demo`, 'not-a-token', big);
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'REQUEST_TOO_LARGE' });
    const { status, text } = await rawRequest(`GET /mcp/demo HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
    expect(status).toBe(413);
    expect(text).toMatch(/^connection: close$/im);
  });

  it('a second Host header is not ignored (RFC 9112 §3.2): the request is refused before authentication', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const { status, text } = await rawRequest(`POST /mcp/demo HTTP/1.1\r\nHost: ${host}\r\nHost: attacker.example\r\nAuthorization: Bearer ${accessToken}\r\nMcp-Session-Id: ${sessionId}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(status).toBe(403);
    expect(text).toContain('Host or Origin not allowed');
  });

  it('a second Authorization header is not ignored: two credentials are no credential', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const { status } = await rawRequest(`POST /mcp/demo HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${accessToken}\r\nAuthorization: Bearer someone-else\r\nMcp-Session-Id: ${sessionId}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(status).toBe(401);
    // The same request with one Authorization header is served (the test above is not refused for another reason).
    const { status: single } = await rawRequest(`POST /mcp/demo HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${accessToken}\r\nMcp-Session-Id: ${sessionId}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    expect(single).toBe(200);
  });
});

describe('security review 3: completion/complete', () => {
  it('a ref of another type is refused for want of a name, even when it carries one (a lenient upstream may read its uri)', async () => {
    const response = await mcpPost({ jsonrpc: '2.0', id: 7, method: 'completion/complete', params: { ref: { type: 'ref/other', name: 'allowed', uri: 'file:///secret' }, argument: { name: 'x', value: '' } } }, { accept: 'application/json' });
    const answer = (await response.json()) as { id: number; error?: { code: number; message: string } };
    expect(answer.error).toMatchObject({ code: -32602, message: expect.stringMatching(/ref\.name is required/) as unknown as string });
  });
});

describe('security review 3: what an agent learns when the upstream fails', () => {
  // Last in this file: it stops the upstream.
  it('an unreachable upstream is named, but its address and the socket error stay in the operator log', async () => {
    await upstream.close();
    const response = await mcpPost({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { accept: 'application/json' });
    const text = await response.text();
    expect(response.status).toBe(502);
    expect(text).toContain('upstream demo is unreachable');
    expect(text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|fetch failed|connect/);
  });
});
