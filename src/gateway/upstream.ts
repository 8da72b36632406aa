import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request as undiciRequest } from 'undici';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** What the proxy sends upstream: a Streamable HTTP request, already rewritten (headers, session id). */
export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'DELETE';
  headers: Headers;
  body?: string | undefined;
  signal: AbortSignal;
}

/** One way of reaching an upstream: a real HTTP endpoint, or a stdio child behind an in-process bridge. */
export interface UpstreamEndpoint {
  fetch(request: UpstreamRequest): Promise<Response>;
  /** Ends whatever the endpoint holds (a child process); HTTP endpoints hold nothing. */
  close(): Promise<void>;
}

/**
 * One keep-alive connection pool for every HTTP upstream (undici opens a pool per origin). Calls go
 * through undici's `request`, not the WHATWG `fetch`: fetch's Request/Headers/body-mixin machinery was
 * the largest single cost of the relay hop in the gateway's profile. Connections per origin are not
 * capped (as with the global fetch dispatcher), so concurrent calls never queue behind each other.
 */
// Idle timeouts stay at undici's defaults (4 s, or the server's `Keep-Alive: timeout` hint less 2 s): a
// longer one would race upstreams that close idle sockets after 5 s (Node's default), and a POST that
// meets a socket closed under it is not retried (it is not idempotent), so the agent would get a 502.
const upstreamAgent = new Agent({ connections: null, pipelining: 1 });

/** Statuses whose response has no body (Fetch §2.2.3 "null body status"); `new Response` rejects one for them. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export function httpEndpoint(url: string): UpstreamEndpoint {
  return {
    fetch: async (r) => {
      const headers: Record<string, string> = {};
      r.headers.forEach((value, name) => (headers[name] = value));
      // No redirects are followed (as with `redirect: 'manual'` before): a 3xx passes back as it is.
      const answer = await undiciRequest(url, { method: r.method, headers, body: r.body ?? null, signal: r.signal, dispatcher: upstreamAgent });
      const out = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) out.append(name, v);
        else out.set(name, value);
      }
      if (NULL_BODY.has(answer.statusCode)) {
        answer.body.resume();
        return new Response(null, { status: answer.statusCode, headers: out });
      }
      return new Response(webBody(answer.body), { status: answer.statusCode, headers: out });
    },
    close: async () => undefined,
  };
}

/**
 * The upstream's Node body as a web stream, one chunk per pull. Not `Readable.toWeb`: its adapter keeps
 * enqueueing chunks that arrive after the web side was cancelled (the proxy cancels an upstream body it
 * answers for itself, e.g. on 401/404), which throws an uncaught ERR_INVALID_STATE.
 */
function webBody(body: Readable): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await chunks.next();
        if (cancelled) return;
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        if (!cancelled) controller.error(error);
      }
    },
    cancel() {
      cancelled = true;
      body.destroy();
    },
  });
}

interface RpcLike {
  id?: string | number;
  method?: string;
  params?: { _meta?: { progressToken?: unknown }; progressToken?: unknown };
  result?: unknown;
  error?: unknown;
}

/**
 * A stdio MCP server (one child process per gateway session: stdio servers serve exactly one client)
 * presented as a Streamable HTTP endpoint, so the proxy treats every upstream alike. The HTTP side is
 * the SDK's web-standard server transport (sessions, SSE, GET stream, 202s); messages are relayed to and
 * from the child unchanged. Notifications that carry a request's progress token, and server requests
 * made while exactly one client request is open, go on that request's stream; the rest on the GET stream.
 */
export class StdioBridge implements UpstreamEndpoint {
  readonly #http: WebStandardStreamableHTTPServerTransport;
  readonly #child: StdioClientTransport;
  /** Open client requests: id → progress token. */
  readonly #open = new Map<string | number, unknown>();
  #started: Promise<void> | undefined;
  #closed = false;

  constructor(command: string, args: string[], env: Record<string, string>) {
    this.#http = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
    // The child gets a minimal environment plus its configured (vault) variables, not Mandate's own.
    this.#child = new StdioClientTransport({ command, args, env: { ...getDefaultEnvironment(), ...env }, stderr: 'ignore' });
    this.#http.onmessage = (message) => {
      const m = message as RpcLike;
      if (m.id !== undefined && m.method !== undefined) this.#open.set(m.id, m.params?._meta?.progressToken);
      this.#child.send(message).catch(() => undefined);
    };
    this.#child.onmessage = (message) => this.#fromChild(message);
    this.#child.onclose = () => void this.close();
    this.#child.onerror = () => undefined;
  }

  #fromChild(message: JSONRPCMessage): void {
    const m = message as RpcLike;
    const send = (relatedRequestId?: string | number) =>
      this.#http.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId }).catch(() => undefined);
    if (m.id !== undefined && m.method === undefined) {
      this.#open.delete(m.id);
      void send();
      return;
    }
    let related: string | number | undefined;
    const token = m.params?.progressToken;
    if (m.method === 'notifications/progress' && token !== undefined) {
      for (const [id, t] of this.#open) if (t === token) related = id;
    } else if (m.id !== undefined && this.#open.size === 1) {
      related = this.#open.keys().next().value;
    }
    void send(related);
  }

  async fetch(request: UpstreamRequest): Promise<Response> {
    if (this.#closed) return new Response(null, { status: 404 });
    this.#started ??= Promise.all([this.#http.start(), this.#child.start()]).then(() => undefined);
    await this.#started;
    const init: RequestInit = { method: request.method, headers: request.headers, signal: request.signal };
    if (request.body !== undefined) init.body = request.body;
    return this.#http.handleRequest(new Request('http://stdio.invalid/mcp', init));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#http.close().catch(() => undefined);
    await this.#child.close().catch(() => undefined);
  }
}
