import type { Server } from 'node:net';
import type { Logger } from 'pino';

/** How often, at most, dropped connections are logged (a flood must not flood the log too). */
const WARN_EVERY_MS = 10_000;

/**
 * Caps the connections a listener holds open at once (`MANDATE_MAX_CONNECTIONS`): Node drops any beyond
 * it as it arrives, before a byte is read. Drops are logged with how many there were, at most every 10 s.
 */
export function capConnections(server: Server, max: number, listener: string, logger: () => Logger | undefined): void {
  server.maxConnections = max;
  let dropped = 0;
  let lastWarning = 0;
  server.on('drop', () => {
    dropped += 1;
    const now = Date.now();
    if (now - lastWarning < WARN_EVERY_MS) return;
    logger()?.warn({ listener, maxConnections: max, dropped }, 'connection limit reached: new connections are dropped');
    lastWarning = now;
    dropped = 0;
  });
}
