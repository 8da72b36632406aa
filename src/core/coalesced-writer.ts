import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Writes to Node's response so that what is written within one turn of the event loop (the headers, an
 * event, the end of a chunked body) leaves in one system call instead of one each. Node corks the socket
 * for the rest of the current tick only; a relayed answer's end arrives a tick after its last bytes, so
 * each cost a write. Here the socket is corked at the first write and uncorked on the next turn of the
 * loop, or by `end`, which Node makes fully uncork it. System calls are the largest single cost of a hop
 * on a virtual machine.
 *
 * The socket, not the response, is corked: a corked response keeps chunked writes in a buffer of its own
 * that `end` does not flush, so they would be lost.
 */
export class CoalescedWriter {
  readonly #res: ServerResponse;
  readonly #socket: Socket | null;
  #corked = false;

  constructor(res: ServerResponse) {
    this.#res = res;
    this.#socket = res.socket;
  }

  /** As `res.write`: false asks the caller to wait for 'drain'. */
  write(bytes: Uint8Array): boolean {
    if (!this.#corked && this.#socket && !this.#socket.destroyed) {
      this.#corked = true;
      this.#socket.cork();
      setImmediate(() => this.#uncork());
    }
    return this.#res.write(bytes);
  }

  end(): void {
    this.#res.end();
    this.#uncork();
  }

  #uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    // `end` may have uncorked it fully already; uncorking an uncorked socket does nothing.
    if (this.#socket!.writableCorked > 0) this.#socket!.uncork();
  }
}
