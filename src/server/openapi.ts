import type { ErrorCode } from '../core/error-catalog.ts';
import { z } from 'zod';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Success status, a description of what comes back and, where one is written, its schema. */
export interface RouteResponse {
  status: number;
  description: string;
  schema?: z.ZodType;
}

export interface RouteDoc {
  method: HttpMethod;
  /** OpenAPI path, with `{param}` placeholders. */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodType;
  success: RouteResponse;
  /** Error codes this route may answer with, for the reader (`x-error-codes`). */
  errors?: readonly ErrorCode[];
  /** What the route does (`agents.suspend`), for authorization (`x-permission`); see src/server/define-route.ts. */
  permission?: string;
}

/** Collects route descriptions as routes are defined and renders an OpenAPI 3.1 document from them. */
export class OpenApiRegistry {
  readonly #routes: RouteDoc[] = [];

  add(route: RouteDoc): void {
    // Two definitions of one operation would document one of them wrongly (and give it two permissions).
    if (this.#routes.some((r) => r.method === route.method && r.path === route.path)) throw new Error(`${route.method.toUpperCase()} ${route.path} is documented twice`);
    this.#routes.push(route);
  }

  /** The documented routes, in the order they were defined. */
  routes(): readonly RouteDoc[] {
    return this.#routes;
  }

  document(serverUrl: string): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const route of this.#routes) {
      const parameters = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
      if (route.query) {
        const shape = z.toJSONSchema(route.query, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, schema] of Object.entries(shape.properties ?? {})) {
          parameters.push({ name, in: 'query', required: (shape.required ?? []).includes(name), schema: schema as { type: string } });
        }
      }
      (paths[route.path] ??= {})[route.method] = {
        summary: route.summary,
        tags: [route.tag],
        security: [{ bearer: [] }],
        ...(route.permission !== undefined && { 'x-permission': route.permission }),
        ...(route.errors && route.errors.length > 0 && { 'x-error-codes': route.errors }),
        ...(parameters.length > 0 && { parameters }),
        ...(route.body && {
          requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input', unrepresentable: 'any' }) } } },
        }),
        responses: {
          [route.success.status]: {
            description: route.success.description,
            // A 204 has no content; elsewhere the schema where one is written, else an object the description describes.
            ...(route.success.status !== 204 && {
              content: { 'application/json': { schema: route.success.schema ? z.toJSONSchema(route.success.schema, { unrepresentable: 'any' }) : { type: 'object', description: route.success.description } } },
            }),
          },
          default: {
            description: `Error (RFC 9457 problem+json)${route.errors && route.errors.length > 0 ? `; codes include ${route.errors.join(', ')}` : ''}`,
            content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
          },
        },
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: 'Mandate API', version: '1', description: 'Identity, access and audit control plane for AI agents.' },
      servers: [{ url: serverUrl }],
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
        schemas: {
          Problem: {
            type: 'object',
            required: ['type', 'title', 'status', 'code'],
            properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, code: { type: 'string' } },
          },
        },
      },
    };
  }
}
