import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';

/** How often, at most, dropped connections are logged (a flood must not flood the log too). */
const WARN_EVERY_MS = 10_000;

export interface ConnectionLimits {
  /** Most connections the listener holds at once (`MANDATE_MAX_CONNECTIONS`). */
  max: number;
  /** Most of them from one client address (`MANDATE_MAX_CONNECTIONS_PER_CLIENT`). */
  perClient: number;
}

/**
 * Caps the connections a listener holds open at once, in all and per client address: connections
 * beyond either limit are dropped as they arrive, before a byte is read (the overall one by Node
 * itself). Drops are logged with how many there were, at most every 10 s; those after a warning are
 * counted into the next one, which comes at the end of the window even when the flood has stopped.
 */
export function capConnections(server: Server, limits: ConnectionLimits, listener: string, logger: () => Logger | undefined): void {
  server.maxConnections = limits.max;
  const dropped = { total: 0, perClient: 0 };
  let lastWarning = 0;
  let trailing: NodeJS.Timeout | undefined;
  const warn = () => {
    trailing = undefined;
    if (dropped.total + dropped.perClient === 0) return;
    logger()?.warn({ listener, maxConnections: limits.max, maxConnectionsPerClient: limits.perClient, dropped: dropped.total, droppedPerClient: dropped.perClient }, 'connection limit reached: new connections are dropped');
    lastWarning = Date.now();
    dropped.total = 0;
    dropped.perClient = 0;
  };
  const drop = (kind: 'total' | 'perClient') => {
    dropped[kind] += 1;
    const wait = lastWarning + WARN_EVERY_MS - Date.now();
    if (wait <= 0) warn();
    else trailing ??= setTimeout(warn, wait).unref();
  };
  server.on('drop', () => drop('total'));

  const open = new Map<string, number>();
  // TLS listeners report the raw TCP connection here too, before the handshake.
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const count = (open.get(client) ?? 0) + 1;
    if (count > limits.perClient) {
      socket.destroy();
      drop('perClient');
      return;
    }
    open.set(client, count);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left === 0) open.delete(client);
      else open.set(client, left);
    });
  });
  server.once('close', () => clearTimeout(trailing));
}
