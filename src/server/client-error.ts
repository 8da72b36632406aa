import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { MandateError, toProblem } from '../core/errors.ts';

/** Node's own answers (no listener) are a bare status line: these say the same as problem+json. */
function refusalOf(error: NodeJS.ErrnoException): MandateError {
  if (error.code === 'HPE_HEADER_OVERFLOW') return new MandateError('HEADERS_TOO_LARGE', 'the request headers exceed 16 KB', 431, { limit: 16 * 1024 });
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new MandateError('REQUEST_TIMEOUT', 'the request was not received in time', 408);
  return new MandateError('REQUEST_MALFORMED', 'the request is not valid HTTP/1.1', 400, { parseError: error.code ?? null });
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * Answers requests Node's parser refuses before any route sees them (headers over 16 KB, malformed
 * HTTP, a request that takes too long to arrive) with problem+json like every other refusal, and closes
 * the connection: after a parse error the rest of its bytes cannot be framed. Installed on every listener.
 */
export function answerClientErrors(server: Pick<Server, 'on'>, listener: string, logger: () => Logger | undefined): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // Only the socket can be answered (there is no request object). A response already under way on it
    // (a request timeout while answering) cannot be followed by another one: close it as Node would.
    const started = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (error.code === 'ECONNRESET' || !socket.writable || started) {
      socket.destroy();
      return;
    }
    const refusal = refusalOf(error);
    logger()?.debug({ listener, code: refusal.code, parseError: error.code, client: socket.remoteAddress }, 'request refused by the HTTP parser');
    const { body } = toProblem(refusal);
    socket.end(`HTTP/1.1 ${refusal.status} ${REASONS[refusal.status]}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    // A client that never reads its answer must not hold the socket: it goes once written, or soon.
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
