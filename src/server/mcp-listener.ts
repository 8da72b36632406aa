import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { CoalescedWriter } from '../core/coalesced-writer.ts';
import { MandateError, storeUnavailable } from '../core/errors.ts';
import { isStoreUnreachable } from '../store/index.ts';
import { problemResponse, STALLED_READER_MS, StreamedAnswer, type GatewayProxy, type ProxyAnswer, type ProxyRequest } from '../gateway/index.ts';

/**
 * `/mcp/{server}` served straight from Node's request listener, ahead of hono: every agent request goes
 * through the gateway, and the WHATWG Request/Response adaptation of @hono/node-server (headers copied,
 * body re-wrapped, the answer piped back through another web stream) was a large share of the work a
 * gateway hop costs. Everything the hono route does is done here too: the same path rules (one
 * percent-decoded segment, no NUL), the same body limit, the same proxy. Other paths return `false` and
 * go to hono, as does `/mcp/{server}` on the mTLS listener.
 */
export function mcpListener(deps: { proxy: GatewayProxy; maxBodyBytes: number; logger: Logger }): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    if (!url.startsWith('/mcp/')) return false;
    const query = url.indexOf('?');
    const segment = (query < 0 ? url : url.slice(0, query)).slice('/mcp/'.length);
    // `/mcp/` itself, deeper paths and the like are hono's (a 404, as before).
    if (segment.length === 0 || segment.includes('/')) return false;
    void serve(req, res, segment, deps).catch((error: unknown) => {
      // Nothing may escape as an unhandled rejection: Node ends the process on one.
      deps.logger.error({ err: error, path: '/mcp' }, 'request failed');
      res.destroy();
    });
    return true;
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, segment: string, deps: { proxy: GatewayProxy; maxBodyBytes: number; logger: Logger }): Promise<void> {
  let response: ProxyAnswer;
  try {
    let server: string;
    try {
      server = decodeURIComponent(segment);
    } catch {
      throw new MandateError('REQUEST_PATH_INVALID', 'the path has a malformed percent-escape', 400);
    }
    if (server.includes('\u0000')) throw new MandateError('REQUEST_PATH_INVALID', 'the path must not contain the NUL character', 400);
    // Decided before anything else, as hono's body limit does on every other route: without
    // Transfer-Encoding the body is exactly Content-Length bytes (RFC 9112 §6.3). Left to the proxy, an
    // unauthenticated request (or a GET) would be answered and its body then read and thrown away by Node.
    if (req.headers['transfer-encoding'] === undefined && Number(req.headers['content-length'] ?? 0) > deps.maxBodyBytes) throw tooLarge(deps.maxBodyBytes);
    const socket = req.socket as TLSSocket;
    // Mutual TLS terminated here: certificate-bound tokens are checked against the connection's certificate.
    const certificate = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    response = await deps.proxy.handle(new NodeProxyRequest(req, res, deps.maxBodyBytes), server, socket.remoteAddress, certificate);
  } catch (error) {
    if (error instanceof MandateError) {
      const problem = problemResponse(error);
      // An unread body stays behind: end the connection rather than parse it as the next request.
      if (error.code === 'REQUEST_TOO_LARGE') problem.headers.set('connection', 'close');
      response = problem;
    } else if (isStoreUnreachable(error)) {
      deps.logger.warn({ err: error, path: '/mcp' }, 'request failed: the store is unreachable');
      response = problemResponse(storeUnavailable(error));
    } else {
      deps.logger.error({ err: error, path: '/mcp' }, 'request failed');
      response = problemResponse(new MandateError('INTERNAL', 'internal error', 500));
    }
  }
  try {
    if (response instanceof StreamedAnswer) {
      if (res.destroyed) response.abandon();
      else await response.writeTo(res);
    } else await writeResponse(res, response);
  } catch (error) {
    // An answer Node refuses to write (writeHead throws on a header value it does not allow): a 500 if
    // nothing went out yet, else the connection is cut so the client sees a broken answer, not a short one.
    deps.logger.error({ err: error, path: '/mcp' }, 'writing the response failed');
    if (response instanceof StreamedAnswer) response.abandon();
    else await response.body?.cancel().catch(() => undefined);
    if (res.headersSent || res.destroyed) res.destroy();
    else res.writeHead(500, { 'content-type': 'application/problem+json', connection: 'close' }).end(await problemResponse(new MandateError('INTERNAL', 'internal error', 500)).text());
  }
}

function tooLarge(maxBodyBytes: number): MandateError {
  return new MandateError('REQUEST_TOO_LARGE', `request body exceeds ${maxBodyBytes} bytes`, 413);
}

/**
 * Node keeps only the first of these fields when a request repeats them (`IncomingMessage.headers`).
 * The gateway must see every value, as it did through hono's Request: two Hosts then fail the Host
 * check (RFC 9112 §3.2 makes them an error) and two Authorization headers fail authentication, instead
 * of the first one counting while a proxy in front may have judged the other.
 */
const FIRST_ONLY = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/** Node's request as the proxy reads it. */
class NodeProxyRequest implements ProxyRequest {
  readonly #req: IncomingMessage;
  readonly #maxBodyBytes: number;
  readonly #abort = new AbortController();
  readonly method: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null };

  constructor(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number) {
    this.#req = req;
    this.#maxBodyBytes = maxBodyBytes;
    this.method = req.method ?? 'GET';
    // Plain HTTP: the mTLS listener is served by hono. Node refuses HTTP/1.1 requests without Host.
    this.url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
    const raw = req.headers;
    this.headers = {
      get: (name) => {
        const key = name.toLowerCase();
        if (FIRST_ONLY.has(key)) return req.headersDistinct[key]?.join(', ') ?? null;
        const value = raw[key];
        return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
      },
    };
    // The agent hung up before the answer was complete.
    res.once('close', () => {
      if (!res.writableFinished) this.#abort.abort();
    });
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** The body as text (UTF-8, a leading BOM dropped, as WHATWG `text()`), within the body limit. */
  text(): Promise<string> {
    const req = this.#req;
    const aborted = () => new MandateError('REQUEST_ABORTED', 'the client closed the request before sending its body', 400);
    // The client may have gone while the proxy authenticated: a destroyed request emits nothing more,
    // so waiting for its 'end' or 'close' would never finish. (Content-Length was checked in `serve`.)
    if (req.destroyed) return Promise.reject(aborted());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.#maxBodyBytes) {
          req.off('data', onData);
          req.pause();
          reject(tooLarge(this.#maxBodyBytes));
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => resolve(new TextDecoder().decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))));
      req.once('error', reject);
      req.once('close', () => {
        if (!req.complete) reject(aborted());
      });
    });
  }
}

/** Writes a WHATWG Response to Node's response, streaming its body chunk by chunk with back-pressure. */
async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  if (res.destroyed) {
    await response.body?.cancel().catch(() => undefined);
    return;
  }
  res.writeHead(response.status, headers);
  const body = response.body;
  if (body === null) {
    res.end();
    return;
  }
  // An event stream's headers go out at once: the client waits for them before the first event.
  if (headers['content-type']?.startsWith('text/event-stream')) res.flushHeaders();
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  res.once('close', cancel);
  const out = new CoalescedWriter(res);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!out.write(value)) await new Promise<void>((resolve) => {
        // An agent that stops reading (a call waiting for approval sends heartbeats) is cut off.
        const stalled = setTimeout(() => res.destroy(), STALLED_READER_MS);
        const go = () => {
          clearTimeout(stalled);
          res.off('drain', go);
          res.off('close', go);
          resolve();
        };
        res.once('drain', go);
        res.once('close', go);
      });
    }
    out.end();
  } catch {
    res.destroy();
  } finally {
    res.off('close', cancel);
  }
}
