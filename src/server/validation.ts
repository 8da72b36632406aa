import type { Context } from 'hono';
import { z } from 'zod';
import { MandateError } from '../core/errors.ts';
import { inspectJson, MAX_JSON_DEPTH } from '../core/json-text.ts';

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
}

/** Parses the JSON body against `schema`: 400 REQUEST_JSON_INVALID or REQUEST_INVALID, never a 5xx. */
export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new MandateError('REQUEST_CONTENT_TYPE', 'send the body as application/json', 415);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch {
    throw new MandateError('REQUEST_JSON_INVALID', 'the body is not valid JSON', 400);
  }
  const problem = inspectJson(raw);
  if (problem === 'deep') throw new MandateError('REQUEST_TOO_DEEP', `the body nests deeper than ${MAX_JSON_DEPTH} levels`, 400, { limit: MAX_JSON_DEPTH });
  if (problem === 'nul') throw new MandateError('REQUEST_INVALID', 'strings must not contain the NUL character', 400);
  if (problem === 'surrogate') throw new MandateError('REQUEST_INVALID', 'strings must be well-formed Unicode (no lone UTF-16 surrogates, RFC 7493 §2.1)', 400);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new MandateError('REQUEST_INVALID', `invalid request body: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 400, { issues: issuesOf(parsed.error) });
  return parsed.data;
}

export function readQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const query = c.req.query();
  if (hasNul(query)) throw new MandateError('REQUEST_QUERY_INVALID', 'query values must not contain the NUL character', 400);
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw new MandateError('REQUEST_QUERY_INVALID', `invalid query: ${parsed.error.issues[0]?.message ?? 'invalid'}`, 400, { issues: issuesOf(parsed.error) });
  return parsed.data;
}

/**
 * Reads a path parameter through `schema`. A parameter that cannot be valid cannot name anything: it is
 * `notFound` (what a well-formed but absent one answers), never a ZodError escaping as a 500.
 */
export function readParam<S extends z.ZodType>(c: Context, name: string, schema: S, notFound: () => MandateError): z.infer<S> {
  const parsed = schema.safeParse(c.req.param(name));
  if (!parsed.success) throw notFound();
  return parsed.data;
}

/** A stored row number as a path parameter (policy versions): a positive integer in PostgreSQL's `integer` range, in plain decimal. */
export const rowNumberParam = z
  .string()
  .regex(/^[1-9][0-9]{0,9}$/)
  .transform(Number)
  .pipe(z.number().max(2 ** 31 - 1));

export const pageQuery = {
  cursor: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
};

/**
 * PostgreSQL text cannot hold U+0000 (SQLite can): refuse it at the edge, for every route, so the two
 * backends answer alike and such input is a 400 rather than a database error.
 */
export function hasNul(value: unknown): boolean {
  return inspectJson(value) === 'nul';
}
