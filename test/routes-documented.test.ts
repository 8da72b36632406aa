import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_DOC, BEGIN, END, permissionTable, withTable, type OpenApiDocument } from '../scripts/api-permissions.ts';
import { serverForFile } from './support/server.ts';

const PERMISSION = /^[a-z]+(\.[a-z-]+)+$/;

/** The admin API and the AuthZEN API: the surfaces whose routes people will be authorized on by permission. */
const AUTHORIZED = /^\/(api|access)\/v1\//;
/** Routes under those prefixes that answer without authentication. */
const PUBLIC = new Set(['GET /api/v1/openapi.json']);

interface Operation {
  'x-permission'?: unknown;
  'x-error-codes'?: unknown;
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

describe('every route is declared once, documented with its permission, error codes and response', () => {
  const server = serverForFile('sqlite');

  const document = () => server().mandate.docs.document(server().url) as unknown as OpenApiDocument & { paths: Record<string, Record<string, Operation>> };
  /** Hono's registered routes (not middleware) under the authorized prefixes, as `METHOD /openapi/{path}`. */
  const registered = () =>
    server()
      .mandate.app.routes.filter((r) => r.method !== 'ALL' && AUTHORIZED.test(r.path))
      .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`)
      .filter((key) => !PUBLIC.has(key));

  it('registers each (method, path) once, and documents it with a permission and the codes it answers', () => {
    const routes = registered();
    expect(routes.length).toBeGreaterThan(90);
    expect(routes.filter((key, i) => routes.indexOf(key) !== i)).toEqual([]);
    const paths = document().paths;
    const problems: string[] = [];
    for (const key of routes) {
      const [method, path] = key.split(' ') as [string, string];
      const operation = paths[path]?.[method.toLowerCase()];
      if (!operation) {
        problems.push(`${key}: not documented`);
        continue;
      }
      const permission = operation['x-permission'];
      if (typeof permission !== 'string' || !PERMISSION.test(permission)) problems.push(`${key}: permission ${String(permission)}`);
      const codes = operation['x-error-codes'];
      if (!Array.isArray(codes) || codes.length === 0 || !codes.every((c) => typeof c === 'string' && /^[A-Z][A-Z0-9_]+$/.test(c))) problems.push(`${key}: error codes ${JSON.stringify(codes)}`);
      const success = Object.entries(operation.responses ?? {}).find(([status]) => status.startsWith('2'));
      if (!success) problems.push(`${key}: no success response`);
      else if (success[0] !== '204' && success[1].content?.['application/json']?.schema === undefined) problems.push(`${key}: no response schema`);
    }
    expect(problems).toEqual([]);
  });

  it('documents no authorized route that is not registered (the document and the router agree)', () => {
    const routes = new Set(registered());
    const documented = Object.entries(document().paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .map((method) => `${method.toUpperCase()} ${path}`)
        .filter(() => AUTHORIZED.test(path)),
    );
    expect(documented.filter((key) => !routes.has(key))).toEqual([]);
  });

  it('the admin API answers every documented route behind authentication (AUTH_REQUIRED is among its codes)', () => {
    for (const [path, operations] of Object.entries(document().paths)) {
      if (!AUTHORIZED.test(path)) continue;
      for (const operation of Object.values(operations)) expect(operation['x-error-codes']).toContain('AUTH_REQUIRED');
    }
  });

  it('docs/api.md lists every route with its permission (npm run docs:api)', () => {
    const markdown = readFileSync(API_DOC, 'utf8');
    expect(markdown).toContain(BEGIN);
    expect(markdown).toContain(END);
    expect(markdown, 'docs/api.md is stale: run npm run docs:api').toBe(withTable(markdown, permissionTable(document())));
  });
});
