/**
 * Streams Server-Sent Events through, one event at a time as each completes (never the whole stream:
 * MCP responses, progress and server requests must reach the agent as they happen). `inspect` sees each
 * event's data and may return a replacement; otherwise the event's bytes pass unchanged.
 * Event format: WHATWG HTML §9.2 (fields `data`, `id`, `event`, `retry`; events end with a blank line).
 */
export function sseTransform(inspect: (data: string) => string | undefined): TransformStream<Uint8Array, Uint8Array> {
  const rewriter = new SseRewriter(inspect);
  return new TransformStream({
    transform(chunk, controller) {
      const out = rewriter.push(chunk);
      if (out) controller.enqueue(out);
    },
    flush(controller) {
      const out = rewriter.end();
      if (out) controller.enqueue(out);
    },
  });
}

/** The incremental core of `sseTransform`: feed chunks, get back the bytes of every event completed so far. */
export class SseRewriter {
  readonly #inspect: (data: string) => string | undefined;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  #buffer = '';

  constructor(inspect: (data: string) => string | undefined) {
    this.#inspect = inspect;
  }

  push(chunk: Uint8Array): Uint8Array | undefined {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    return this.#drain(false);
  }

  end(): Uint8Array | undefined {
    this.#buffer += this.#decoder.decode();
    return this.#drain(true);
  }

  #drain(final: boolean): Uint8Array | undefined {
    if (this.#buffer.includes('\r')) this.#buffer = this.#buffer.replace(/\r\n?/g, '\n');
    let out = '';
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
      out += rewriteBlock(this.#buffer.slice(0, end + 2), this.#inspect);
      this.#buffer = this.#buffer.slice(end + 2);
    }
    if (final && this.#buffer.length > 0) {
      out += this.#buffer;
      this.#buffer = '';
    }
    return out.length > 0 ? this.#encoder.encode(out) : undefined;
  }
}

function rewriteBlock(block: string, inspect: (data: string) => string | undefined): string {
  const lines = block.slice(0, -2).split('\n');
  const data: string[] = [];
  const other: string[] = [];
  for (const line of lines) {
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    else other.push(line);
  }
  if (data.length === 0) return block;
  const replacement = inspect(data.join('\n'));
  if (replacement === undefined) return block;
  return `${[...other, ...replacement.split('\n').map((l) => `data: ${l}`)].join('\n')}\n\n`;
}
