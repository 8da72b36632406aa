import type { Context } from 'hono';
import { z } from 'zod';
import { MandateError, toProblem } from '../core/errors.ts';
import { asStoreError, dbErrorKind } from '../store/index.ts';

/**
 * RFC 9457 problem details. `type` is a stable URI per code so clients may dereference it; `code`
 * (an extension member, §3.2) is what callers branch on.
 */
export function problem(c: Context, error: MandateError): Response {
  const { status, headers, body } = toProblem(error);
  return c.body(body, status as 400, headers);
}

export function toMandateError(cause: unknown): MandateError {
  // Store errors that did not pass through the store's own mapping (a raw driver error) are 503s too.
  const error = asStoreError(cause);
  if (error instanceof MandateError) return error;
  // A schema that rejects request data (a path parameter, a header) is the client's fault wherever it
  // was parsed: routes should use src/server/validation.ts, but one that does not must not answer 500.
  // `$ZodError` is the base of every zod error (classic `ZodError` and `z.core.parse`'s alike).
  if (error instanceof z.core.$ZodError) return new MandateError('REQUEST_INVALID', `invalid request: ${error.issues[0]?.message ?? 'invalid'}`, 400, { issues: error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  // Database constraint violations caused by a request are conflicts, not server faults: told by the
  // driver's code (src/store/db-errors.ts), never by a message, which a request's own data could echo.
  const kind = dbErrorKind(error);
  if (kind === 'unique_violation') return new MandateError('CONFLICT', 'the resource conflicts with an existing one', 409);
  if (kind === 'foreign_key_violation') return new MandateError('REFERENCE_INVALID', 'a referenced resource does not exist', 422);
  return new MandateError('INTERNAL', 'internal error', 500);
}
