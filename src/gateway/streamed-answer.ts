import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { CoalescedWriter } from '../core/coalesced-writer.ts';
import type { SseRewriter } from './sse.ts';

/**
 * How long an agent may leave a relayed answer unread (its socket full) before the connection is cut:
 * an agent that stops reading would otherwise hold its connection, and the upstream call, for ever.
 */
export const STALLED_READER_MS = 60_000;

/**
 * An upstream answer relayed to the agent as it arrives: chunk by chunk, no buffering, SSE events
 * rewritten one by one when a rewriter is given. Written straight from the upstream's Node stream onto
 * the agent's socket (`writeTo`, the `/mcp` listener), or wrapped as a WHATWG Response where a route
 * needs one (`toResponse`). `done` runs exactly once, when the answer is over: relayed, broken off, or
 * abandoned by the agent. When the upstream's stream fails (it broke, or the kill switch aborted it),
 * `broken` may supply last bytes (errors for the requests left unanswered) and the agent's answer then
 * ends normally.
 */
export class StreamedAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly #source: Readable;
  readonly #rewriter: SseRewriter | undefined;
  readonly #done: () => void;
  readonly #broken: (() => Uint8Array | undefined) | undefined;
  readonly #stalledReaderMs: number;
  #finished = false;

  constructor(status: number, headers: Record<string, string>, source: Readable, options: { rewriter?: SseRewriter | undefined; done: () => void; broken?: (() => Uint8Array | undefined) | undefined; stalledReaderMs?: number }) {
    this.status = status;
    this.headers = headers;
    this.#source = source;
    this.#rewriter = options.rewriter;
    this.#done = options.done;
    this.#broken = options.broken;
    this.#stalledReaderMs = options.stalledReaderMs ?? STALLED_READER_MS;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#done();
  }

  /** The agent's side went away before anything was written: the upstream's answer is given up. */
  abandon(): void {
    this.#source.destroy();
    this.#finish();
  }

  /** Writes the answer onto Node's response, with back-pressure; resolves when it is over. */
  writeTo(res: ServerResponse): Promise<void> {
    const source = this.#source;
    const rewriter = this.#rewriter;
    return new Promise<void>((resolve) => {
      const out = new CoalescedWriter(res);
      let flush: NodeJS.Immediate | undefined;
      /** Running while the agent's socket is full: the agent stopped reading. */
      let stalled: NodeJS.Timeout | undefined;
      /** Something went out: the headers with it (`headersSent` turns true at `writeHead`, before that). */
      let wrote = false;
      const end = () => {
        if (flush) clearImmediate(flush);
        if (stalled) clearTimeout(stalled);
        source.off('data', onData);
        source.off('end', onEnd);
        source.off('error', onError);
        res.off('drain', onDrain);
        res.off('close', onClose);
        this.#finish();
        resolve();
      };
      const onData = (chunk: Buffer) => {
        let bytes: Uint8Array | undefined;
        try {
          bytes = rewriter ? rewriter.push(chunk) : chunk;
        } catch {
          // The rewriter failed on what the upstream sent: end the answer as if the stream broke.
          source.destroy();
          onError();
          return;
        }
        if (bytes && bytes.byteLength > 0) {
          wrote = true;
          if (!out.write(bytes)) {
            source.pause();
            stalled ??= setTimeout(() => res.destroy(), this.#stalledReaderMs);
          }
        }
      };
      const onDrain = () => {
        if (stalled) clearTimeout(stalled);
        stalled = undefined;
        source.resume();
      };
      const onEnd = () => {
        if (!res.destroyed) {
          const tail = rewriter?.end();
          if (tail) out.write(tail);
          out.end();
        }
        end();
      };
      const onError = () => {
        if (!res.destroyed) {
          const last = this.#broken?.();
          if (last) out.write(last);
          out.end();
        }
        end();
      };
      // The agent hung up: its request's signal aborts the upstream call; the stream is let go here.
      const onClose = () => {
        if (res.writableFinished) return;
        source.destroy();
        end();
      };
      res.writeHead(this.status, this.headers);
      // An event stream's headers must reach the client before its first event does, which may be a
      // while (a long call, a GET stream). When that event is already here, headers and event leave in
      // one write: the relay is then one system call per answer instead of two.
      if (this.headers['content-type']?.startsWith('text/event-stream')) {
        flush = setImmediate(() => {
          flush = undefined;
          if (!wrote && !res.destroyed) res.flushHeaders();
        });
      }
      source.on('data', onData);
      source.once('end', onEnd);
      source.once('error', onError);
      res.on('drain', onDrain);
      res.once('close', onClose);
      if (res.destroyed) onClose();
      // It failed before it was read (readers learn of that from `errored`, see upstream.ts).
      else if (source.errored || source.destroyed) onError();
    });
  }

  /** The same answer as a WHATWG Response (hono routes, the approval stream). */
  toResponse(): Response {
    const source = this.#source;
    const rewriter = this.#rewriter;
    const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    // Not `Readable.toWeb`: its adapter keeps enqueueing chunks that arrive after the web side was
    // cancelled, which throws an uncaught ERR_INVALID_STATE.
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          for (;;) {
            const { done, value } = await chunks.next();
            if (this.#finished) return;
            if (done) {
              const tail = rewriter?.end();
              if (tail) controller.enqueue(tail);
              controller.close();
              this.#finish();
              return;
            }
            const out = rewriter ? rewriter.push(value) : value;
            if (out && out.byteLength > 0) {
              controller.enqueue(out);
              return;
            }
          }
        } catch {
          if (this.#finished) return;
          // Whatever failed (the upstream, or the rewriter on what it sent), the upstream call is given up.
          source.destroy();
          const last = this.#broken?.();
          if (last) controller.enqueue(last);
          controller.close();
          this.#finish();
        }
      },
      cancel: () => {
        source.destroy();
        this.#finish();
      },
    });
    return new Response(body, { status: this.status, headers: this.headers });
  }
}

/** What the proxy answers an agent with: a Response it made itself, or the upstream's answer relayed. */
export type ProxyAnswer = Response | StreamedAnswer;

/** As a WHATWG Response, for routes that need one. */
export function asResponse(answer: ProxyAnswer): Response {
  return answer instanceof StreamedAnswer ? answer.toResponse() : answer;
}
