/**
 * The leanest MCP upstream that still speaks Streamable HTTP correctly enough for the gateway and the
 * SDK client: node:http, one session id per initialize, JSON answers for everything but tools/call,
 * which answers as SSE (as the reference SDK server does). Its own latency and garbage are close to
 * nothing, so what a path adds on top of it is the path's, not the upstream's noise. Used by
 * bench/gateway.ts, and by tests that need an upstream to misbehave on purpose (`answerCall`).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const TOOLS = [
  { name: 'echo', description: 'Echoes a message', inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } },
  { name: 'crm_lookup', description: 'Looks up a customer', inputSchema: { type: 'object', properties: { customer: { type: 'string' } } } },
  { name: 'send_email', description: 'Sends an e-mail', inputSchema: { type: 'object', properties: { to: { type: 'string' }, body: { type: 'string' } } } },
];

export interface Rpc {
  jsonrpc: '2.0';
  id?: string | number;
  method?: string;
  params?: { name?: string; arguments?: { message?: unknown }; protocolVersion?: string };
}

export interface MinimalUpstreamOptions {
  /** The bearer token the upstream demands; none demanded when absent. */
  requiredToken?: string;
  /** Answers a tools/call itself (return true) instead of the echo answer: for upstreams that misbehave. */
  answerCall?: (res: ServerResponse, message: Rpc) => boolean;
}

export async function startMinimalUpstream(options: MinimalUpstreamOptions): Promise<{ url: string; close(): Promise<void> }> {
  const sessions = new Set<string>();
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    if (options.requiredToken !== undefined && req.headers.authorization !== `Bearer ${options.requiredToken}`) return json(res, 401, { error: 'unauthorized' });
    const session = req.headers['mcp-session-id'];
    if (req.method === 'DELETE') {
      if (typeof session === 'string') sessions.delete(session);
      return json(res, 200, {});
    }
    if (req.method !== 'POST') return json(res, 405, { error: 'method not allowed' }, { allow: 'POST, DELETE' });
    let message: Rpc;
    try {
      message = JSON.parse(text) as Rpc;
    } catch {
      return json(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    }
    if (message.method === 'initialize') {
      const id = randomUUID();
      sessions.add(id);
      const result = { protocolVersion: message.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'minimal', version: '1.0.0' } };
      return json(res, 200, { jsonrpc: '2.0', id: message.id, result }, { 'mcp-session-id': id });
    }
    if (typeof session !== 'string' || !sessions.has(session)) return json(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    if (message.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    if (message.method === 'tools/list') return json(res, 200, { jsonrpc: '2.0', id: message.id, result: { tools: TOOLS } });
    if (message.method === 'tools/call') {
      if (options.answerCall?.(res, message)) return;
      const result = { content: [{ type: 'text', text: `echo: ${String(message.params?.arguments?.message ?? '')}` }] };
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: message.id, result })}\n\n`);
      return;
    }
    return json(res, 200, { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: 'Method not found' } });
  };
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => handle(req, res, text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
