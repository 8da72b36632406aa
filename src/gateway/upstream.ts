import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Agent } from 'undici';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** What the proxy sends upstream: a Streamable HTTP request, already rewritten (headers, session id). */
export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: string | undefined;
  signal: AbortSignal;
}

/**
 * What the upstream answered, as Node gives it: no WHATWG Headers or web stream in between, since the
 * body is usually relayed straight onto the agent's socket (streamed-answer.ts).
 */
export interface UpstreamAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  /** `null` for statuses that have no body. Destroy it to give the answer up. */
  body: Readable | null;
}

/** A header's value (the first, if the upstream repeated it). */
export function answerHeader(answer: UpstreamAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** One way of reaching an upstream: a real HTTP endpoint, or a stdio child behind an in-process bridge. */
export interface UpstreamEndpoint {
  fetch(request: UpstreamRequest): Promise<UpstreamAnswer>;
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

/** Statuses whose response has no body (RFC 9110 §6.4.1). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * A body's failure (the upstream broke off, or the call was aborted) may come before anyone reads it;
 * unobserved, Node would raise it as an uncaught exception. Readers learn of it from `errored`.
 */
function observed(body: Readable): Readable {
  body.on('error', () => undefined);
  return body;
}

export function httpEndpoint(url: string): UpstreamEndpoint {
  // Parsed once per session, not on every call.
  const parsed = new URL(url);
  const origin = parsed.origin;
  const path = `${parsed.pathname}${parsed.search}`;
  return {
    fetch: async (r) => {
      // No redirects are followed: a 3xx passes back as it is.
      const answer = await upstreamAgent.request({ origin, path, method: r.method, headers: r.headers, body: r.body ?? null, signal: r.signal });
      if (NULL_BODY.has(answer.statusCode)) {
        answer.body.resume();
        return { status: answer.statusCode, headers: answer.headers, body: null };
      }
      return { status: answer.statusCode, headers: answer.headers, body: observed(answer.body) };
    },
    close: async () => undefined,
  };
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

  async fetch(request: UpstreamRequest): Promise<UpstreamAnswer> {
    if (this.#closed) return { status: 404, headers: {}, body: null };
    this.#started ??= Promise.all([this.#http.start(), this.#child.start()]).then(() => undefined);
    await this.#started;
    const init: RequestInit = { method: request.method, headers: request.headers, signal: request.signal };
    if (request.body !== undefined) init.body = request.body;
    const response = await this.#http.handleRequest(new Request('http://stdio.invalid/mcp', init));
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => (headers[name] = value));
    return { status: response.status, headers, body: response.body ? observed(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>)) : null };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#http.close().catch(() => undefined);
    await this.#child.close().catch(() => undefined);
  }
}
