/**
 * Coded errors. Every failure a caller may branch on carries a stable `code`; HTTP answers render it as
 * RFC 9457 problem+json. Callers branch on `code`, never on `message`.
 */
export class MandateError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, status = 400, details?: Record<string, unknown>) {
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

export const notFound = (what: string, id: string): MandateError =>
  new MandateError(`${what.toUpperCase()}_NOT_FOUND`, `${what} ${id} not found`, 404, { id });

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
