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
