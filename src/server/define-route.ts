import type { ErrorCode } from '../core/error-catalog.ts';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { MandateError } from '../core/errors.ts';
import type { AppEnv } from './app-env.ts';
import type { HttpMethod, OpenApiRegistry, RouteResponse } from './openapi.ts';
import { readBody, readParam, readQuery } from './validation.ts';

/**
 * Where routes are registered: a Hono router and the prefix it is mounted under (`/api/v1` for the admin
 * API, `''` for routes on the app itself), plus the error codes its middleware may answer with before
 * any route runs (the admin API's bearer authentication), which every route's documentation lists.
 */
export interface Router {
  hono: Hono<AppEnv>;
  base: string;
  errors: readonly ErrorCode[];
}

/** A path parameter read through a schema: a value the schema refuses names nothing, so it is `notFound`. */
export interface ParamSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  notFound: () => MandateError;
}

export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined, P extends Record<string, ParamSpec>> {
  method: HttpMethod;
  /** The full path as OpenAPI writes it, with `{param}` placeholders (`/api/v1/humans/{id}`). */
  path: string;
  summary: string;
  tag: string;
  /** The JSON body, read by `readBody` before the handler runs. */
  body?: B;
  /** An empty POST (no Content-Length, or 0, and no Transfer-Encoding) stands for `{}` parsed by `body`. */
  bodyOptional?: boolean;
  query?: Q;
  /** Path parameters validated before the handler (in declaration order, before the query and body). */
  params?: P;
  response: RouteResponse;
  /** Codes this route answers with beyond the router's and the request-validation ones. */
  errors: readonly ErrorCode[];
  /** What the route does, `resource.verb` (`agents.suspend`): what people will be authorized by. */
  permission: string;
}

type Infer<S> = S extends z.ZodType ? z.infer<S> : undefined;

export interface RouteInput<B, Q, P extends Record<string, ParamSpec>> {
  body: Infer<B>;
  query: Infer<Q>;
  params: { [K in keyof P]: z.infer<P[K]['schema']> };
  /** A path parameter as received, for routes that hand it to a service unvalidated (the service answers its 404). */
  path: (name: string) => string;
}

export type RouteHandler<B, Q, P extends Record<string, ParamSpec>> = (c: Context<AppEnv>, input: RouteInput<B, Q, P>) => Response | Promise<Response>;

/** A page of a list: pass `next` back as the cursor (null on the last page). */
export const pageResponse: RouteResponse = {
  status: 200,
  description: '{items, next}',
  schema: z.object({ items: z.array(z.object({}).loose()), next: z.string().nullable() }),
};

/** A whole list: `{items}`. */
export const itemsResponse: RouteResponse = { status: 200, description: '{items}', schema: z.object({ items: z.array(z.unknown()) }) };

/** No content. */
export const removedResponse: RouteResponse = { status: 204, description: 'Removed' };

/** Codes request validation answers with (src/server/validation.ts), listed for each route that has a body or a query. */
const BODY_ERRORS: readonly ErrorCode[] = ['REQUEST_CONTENT_TYPE', 'REQUEST_JSON_INVALID', 'REQUEST_TOO_DEEP', 'REQUEST_INVALID'];
const QUERY_ERRORS: readonly ErrorCode[] = ['REQUEST_QUERY_INVALID'];

function emptyBody(c: Context): boolean {
  return (c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding');
}

/** `/api/v1/humans/{id}/offboard` under `/api/v1` → `/humans/:id/offboard`. */
function honoPath(router: Router, path: string): string {
  if (!path.startsWith(router.base)) throw new Error(`route ${path} is outside its router's base ${router.base}`);
  const relative = path.slice(router.base.length);
  return relative.replace(/\{(\w+)\}/g, ':$1') || '/';
}

/**
 * Registers a route's handler on `router` and documents it in `registry`, in one call, so a route cannot
 * exist undocumented or without a permission. The handler receives the validated body, query and
 * declared path parameters; validation is the same as `readBody`/`readQuery`/`readParam`, so the codes
 * and statuses are those the routes always answered.
 */
export function defineRoute<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, P extends Record<string, ParamSpec> = Record<never, ParamSpec>>(
  router: Router,
  registry: OpenApiRegistry,
  spec: RouteSpec<B, Q, P>,
  handler: RouteHandler<B, Q, P>,
): void {
  const errors: ErrorCode[] = [...new Set([...router.errors, ...(spec.body ? BODY_ERRORS : []), ...(spec.query ? QUERY_ERRORS : []), ...spec.errors])];
  registry.add({
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    tag: spec.tag,
    ...(spec.body && { body: spec.body }),
    ...(spec.query && { query: spec.query }),
    success: spec.response,
    errors,
    permission: spec.permission,
  });
  const paramEntries = Object.entries(spec.params ?? {});
  router.hono.on(spec.method.toUpperCase(), honoPath(router, spec.path), async (c) => {
    // Parameters first: a route that cannot name anything is its 404 whatever the body says, as before.
    const params: Record<string, unknown> = {};
    for (const [name, param] of paramEntries) params[name] = readParam(c, name, param.schema, param.notFound);
    const query = spec.query ? readQuery(c, spec.query) : undefined;
    const body = spec.body ? (spec.bodyOptional && emptyBody(c) ? spec.body.parse({}) : await readBody(c, spec.body)) : undefined;
    const path = (name: string): string => {
      const value = c.req.param(name);
      // Only a placeholder of the route's own path can be asked for: a typo is a programming error.
      if (value === undefined) throw new Error(`${spec.path} has no path parameter ${name}`);
      return value;
    };
    return handler(c, { body, query, params, path } as RouteInput<B, Q, P>);
  });
}
