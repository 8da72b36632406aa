import type { IncomingMessage } from 'node:http';

/**
 * With `MANDATE_ADMIN_PORT` the admin API has a listener of its own. Requests are told apart by the
 * listener they arrived on (marked here as they arrive), and paths by what hono routes on, so the two
 * can never disagree about whether a request is for the admin API.
 */
const fromAdminListener = new WeakSet<IncomingMessage>();

export function markAdminRequest(req: IncomingMessage): void {
  fromAdminListener.add(req);
}

export function cameThroughAdminListener(env: unknown): boolean {
  const incoming = (env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming !== undefined && fromAdminListener.has(incoming);
}

/** The admin API: `/api/v1` and below. */
export function isAdminApiPath(path: string): boolean {
  return path === '/api/v1' || path.startsWith('/api/v1/');
}

/** What the admin listener serves besides the admin API: liveness and readiness probes. */
export function isProbePath(path: string): boolean {
  return path === '/healthz' || path === '/readyz';
}
