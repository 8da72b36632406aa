/**
 * An MCP upstream that is careless the way real ones are: it finds tools and prompts by a normalised
 * name (NFKC, lowercased, BOM and zero-width characters and path prefixes dropped), so `HIDDEN_ADMIN`,
 * `ｈｉｄｄｅｎ_admin` or `../hidden_admin` all run `hidden_admin`, a tool it never lists. It accepts
 * JSON-RPC batches (MCP 2025-03-26) whatever the session negotiated, answers in JSON, and records every
 * call and every list, so tests can prove what reached it. Streamable HTTP over node:http.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Rpc {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: { name?: unknown; protocolVersion?: string };
}

export interface LenientUpstream {
  url: string;
  /** Every tools/call, prompts/get and completion/complete that reached it: the name as sent, and what it resolved to. */
  calls: { method: string; sent: unknown; ran: string | undefined }[];
  /** How many tools/list requests it answered (each discovery lists once). */
  lists: () => number;
  /** Offers (and lists) one more tool from now on. */
  addTool(name: string): void;
  close(): Promise<void>;
}

export const normalise = (name: string): string =>
  name
    .normalize('NFKC')
    .replace(/[\uFEFF\u200B-\u200D\u2060]/g, '')
    .trim()
    .toLowerCase()
    .split(/[/\\]/)
    .pop()!;

const schema = { type: 'object', properties: {} };

export async function startLenientUpstream(options: { listed?: string[]; hidden?: string[]; prompts?: string[]; hiddenPrompts?: string[] } = {}): Promise<LenientUpstream> {
  const listed = [...(options.listed ?? ['echo', 'read_secret', 'send_external'])];
  const hidden = options.hidden ?? ['hidden_admin'];
  const prompts = options.prompts ?? ['greeting'];
  const hiddenPrompts = options.hiddenPrompts ?? ['hidden_prompt'];
  const sessions = new Set<string>();
  const calls: LenientUpstream['calls'] = [];
  let lists = 0;

  const resolve = (known: string[], name: unknown) => (typeof name === 'string' ? known.find((t) => t === normalise(name)) : undefined);
  const answer = (message: Rpc, session: string | undefined): { reply?: unknown; session?: string } => {
    const result = (value: unknown) => ({ reply: { jsonrpc: '2.0', id: message.id, result: value } });
    const error = (code: number, text: string) => ({ reply: { jsonrpc: '2.0', id: message.id, error: { code, message: text } } });
    if (message.method === 'initialize') {
      const id = randomUUID();
      sessions.add(id);
      return { ...result({ protocolVersion: message.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {}, prompts: {} }, serverInfo: { name: 'lenient', version: '1.0.0' } }), session: id };
    }
    if (message.id === undefined || message.method === undefined) return {};
    if (session === undefined) return error(-32001, 'Session not found');
    switch (message.method) {
      case 'tools/list':
        lists += 1;
        return result({ tools: listed.map((name) => ({ name, inputSchema: schema })) });
      case 'tools/call': {
        const ran = resolve([...listed, ...hidden], message.params?.name);
        calls.push({ method: message.method, sent: message.params?.name, ran });
        return ran ? result({ content: [{ type: 'text', text: `ran ${ran}` }] }) : error(-32602, 'Unknown tool');
      }
      case 'prompts/list':
        return result({ prompts: prompts.map((name) => ({ name })) });
      case 'prompts/get': {
        const ran = resolve([...prompts, ...hiddenPrompts], message.params?.name);
        calls.push({ method: message.method, sent: message.params?.name, ran });
        return ran ? result({ messages: [{ role: 'user', content: { type: 'text', text: `prompt ${ran}` } }] }) : error(-32602, 'Unknown prompt');
      }
      case 'completion/complete': {
        const ref = (message.params as { ref?: { name?: unknown } } | undefined)?.ref;
        const ran = resolve([...prompts, ...hiddenPrompts], ref?.name);
        calls.push({ method: message.method, sent: ref?.name, ran });
        return result({ completion: { values: [] } });
      }
      case 'ping':
        return result({});
      default:
        return error(-32601, 'Method not found');
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, text: string) => {
    if (req.method === 'DELETE') return send(res, 200, {});
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' }, { allow: 'POST, DELETE' });
    let parsed: Rpc | Rpc[];
    try {
      parsed = JSON.parse(text) as Rpc | Rpc[];
    } catch {
      return send(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    }
    const header = req.headers['mcp-session-id'];
    const session = typeof header === 'string' && sessions.has(header) ? header : undefined;
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    const answers = messages.map((m) => answer(m, session));
    const replies = answers.flatMap((a) => (a.reply === undefined ? [] : [a.reply]));
    const opened = answers.find((a) => a.session)?.session;
    if (replies.length === 0) {
      res.writeHead(202).end();
      return;
    }
    send(res, 200, Array.isArray(parsed) ? replies : replies[0], opened ? { 'mcp-session-id': opened } : {});
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
    calls,
    lists: () => lists,
    addTool: (name) => void listed.push(name),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
