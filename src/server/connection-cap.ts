import type { Server } from 'node:net';
import type { Logger } from 'pino';

/** How often, at most, dropped connections are logged (a flood must not flood the log too). */
const WARN_EVERY_MS = 10_000;

/**
 * Caps the connections a listener holds open at once (`MANDATE_MAX_CONNECTIONS`): Node drops any beyond
 * it as it arrives, before a byte is read. Drops are logged with how many there were, at most every 10 s;
 * those after a warning are counted into the next one, which comes at the end of the window even when
 * the flood has stopped.
 */
export function capConnections(server: Server, max: number, listener: string, logger: () => Logger | undefined): void {
  server.maxConnections = max;
  let dropped = 0;
  let lastWarning = 0;
  let trailing: NodeJS.Timeout | undefined;
  const warn = () => {
    trailing = undefined;
    if (dropped === 0) return;
    logger()?.warn({ listener, maxConnections: max, dropped }, 'connection limit reached: new connections are dropped');
    lastWarning = Date.now();
    dropped = 0;
  };
  server.on('drop', () => {
    dropped += 1;
    const wait = lastWarning + WARN_EVERY_MS - Date.now();
    if (wait <= 0) warn();
    else trailing ??= setTimeout(warn, wait).unref();
  });
  server.once('close', () => clearTimeout(trailing));
}
