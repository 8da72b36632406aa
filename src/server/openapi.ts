import { z } from 'zod';

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI path, with `{param}` placeholders. */
  path: string;
  summary: string;
  tag: string;
  body?: z.ZodType;
  query?: z.ZodType;
  /** Success status and a description of what comes back. */
  success: { status: number; description: string; schema?: z.ZodType };
  /** Error codes this route may answer with, for the reader. */
  errors?: string[];
}

/** Collects route descriptions as routes are defined and renders an OpenAPI 3.1 document from them. */
export class OpenApiRegistry {
  readonly #routes: RouteDoc[] = [];

  add(route: RouteDoc): void {
    this.#routes.push(route);
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
        ...(parameters.length > 0 && { parameters }),
        ...(route.body && {
          requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(route.body, { io: 'input', unrepresentable: 'any' }) } } },
        }),
        responses: {
          [route.success.status]: {
            description: route.success.description,
            ...(route.success.schema && { content: { 'application/json': { schema: z.toJSONSchema(route.success.schema, { unrepresentable: 'any' }) } } }),
          },
          default: {
            description: `Error (RFC 9457 problem+json)${route.errors ? `; codes include ${route.errors.join(', ')}` : ''}`,
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
