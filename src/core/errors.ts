import { ERRORS, type ErrorCode } from './error-catalog.ts';

/**
 * Coded errors. Every failure a caller may branch on carries a stable `code` from the catalog
 * (src/core/error-catalog.ts); HTTP answers render it as RFC 9457 problem+json. Callers branch on
 * `code`, never on `message`. The status is the catalog's unless a call site overrides it (the few that
 * do are listed in src/core/error-catalog.test.ts).
 */
export class MandateError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  // The lookup tolerates a code the types would refuse (a cast, a caller in plain JS): building an
  // error must not itself throw and hide the failure being reported; such a code answers 500.
  constructor(code: C, message: string, status: number = (ERRORS as Partial<Record<string, { status: number }>>)[code]?.status ?? 500, details?: Record<string, unknown>) {
    super(message);
    this.name = 'MandateError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export function isMandateError(value: unknown): value is MandateError {
  return value instanceof MandateError;
}

/** What `notFound` may name: every catalog code `<WHAT>_NOT_FOUND`, as `what` (any case). */
type NotFoundCode = Extract<ErrorCode, `${string}_NOT_FOUND`>;
type NotFoundSubject<W extends string> = `${Uppercase<W>}_NOT_FOUND` extends NotFoundCode ? W : never;

export const notFound = <W extends string>(what: NotFoundSubject<W>, id: string): MandateError =>
  new MandateError(`${what.toUpperCase()}_NOT_FOUND` as NotFoundCode, `${what} ${id} not found`, 404, { id });

/**
 * Members RFC 9457 defines (§3.1) plus our `code`. An error's details are extension members (§3.2):
 * one named like these would overwrite what a client reads first (a detail `{status: "denied"}` made a
 * 409 say `"status":"denied"`, an entity `{type: "Agent"}` replaced the problem type URI), so they are
 * never rendered; name such details otherwise (`approvalStatus`, `entityType`).
 */
export const PROBLEM_MEMBERS: ReadonlySet<string> = new Set(['type', 'title', 'status', 'detail', 'instance', 'code']);

/** The RFC 9457 problem details of a coded error: `type` is a stable URI per code, `code` what callers branch on. */
export function problemDetails(error: MandateError): Record<string, unknown> {
  const extensions = Object.entries(error.details ?? {}).filter(([name]) => !PROBLEM_MEMBERS.has(name));
  return {
    ...Object.fromEntries(extensions),
    type: `https://mandate.dev/problems/${error.code.toLowerCase().replaceAll('_', '-')}`,
    title: error.code,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
}

/** A coded error as an HTTP answer: problem+json, with `Retry-After` when the condition passes by itself. */
export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The one rendering of a coded error as an HTTP answer, used by the admin API (hono, src/server/problem.ts),
 * the gateway (src/gateway/proxy.ts) and the HTTP parser's refusals alike, so they cannot drift apart.
 */
export function toProblem(error: MandateError): Problem {
  const retryAfter = retryAfterSeconds(error);
  return {
    status: error.status,
    headers: { 'content-type': 'application/problem+json', ...(retryAfter !== undefined && { 'retry-after': String(retryAfter) }) },
    body: JSON.stringify(problemDetails(error)),
  };
}

/** Seconds a client is told to wait (`Retry-After`) before trying again while the database is away. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * The database cannot be reached (connection refused or cut, an administrator's shutdown, a pool that
 * cannot connect in time, an embedded store that is locked or full). Not the request's fault and not a
 * bug: a 503 the client may retry, never a 500. The cause is kept for the log, never rendered.
 */
export function storeUnavailable(cause?: unknown): MandateError {
  const error = new MandateError('STORE_UNAVAILABLE', 'the database is unreachable; retry shortly', 503);
  if (cause !== undefined) error.cause = cause;
  return error;
}

/**
 * `Retry-After` for an answer rendering `error`, when the condition is expected to pass by itself: the
 * store away, or a token that could not be checked (what the verifier says when the store is away).
 */
export function retryAfterSeconds(error: MandateError): number | undefined {
  return error.code === 'STORE_UNAVAILABLE' || error.code === 'VERIFIER_UNAVAILABLE' ? STORE_RETRY_AFTER_SECONDS : undefined;
}
