import { inspectJson } from '../../core/json-text.ts';
import { Hono, type Context } from 'hono';
import { constantTimeEqual } from '../../core/crypto.ts';
import { retryAfterSeconds, type MandateError } from '../../core/errors.ts';
import { ERROR_SCHEMA, LIST_RESPONSE_SCHEMA, resourceTypeDocuments, SCIM_CONTENT_TYPE, schemaDocuments, scimError, ScimService, serviceProviderConfig } from '../../identity/scim/index.ts';
import { approverGroupUses } from '../../governance/approver-groups.ts';
import type { AppEnv } from '../app-env.ts';
import { bearerAuth } from '../bearer-auth.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import { toMandateError } from '../problem.ts';
import type { Services } from '../services.ts';

/** Where SCIM lives: outside /api/v1, with its own token (IdPs are configured with a base URL and a bearer token). */
export const SCIM_BASE_PATH = '/scim/v2';

/** Deepest JSON nesting a SCIM body may have; SCIM resources nest three levels at most. */
const MAX_JSON_DEPTH = 32;

export function isScimPath(path: string): boolean {
  return path === SCIM_BASE_PATH || path.startsWith(`${SCIM_BASE_PATH}/`);
}

/** RFC 7644 §3.12: the SCIM error body, `status` as a string, with the RFC's `scimType` where one applies. */
export function scimErrorResponse(c: Context, error: MandateError): Response {
  // 422 is not a SCIM status: an unprocessable value is 400 invalidValue (RFC 7644 §3.12, Table 9).
  const status = error.status === 422 ? 400 : error.status;
  const given = typeof error.details?.scimType === 'string' ? error.details.scimType : undefined;
  const scimType = given ?? (status === 409 ? 'uniqueness' : status === 400 ? 'invalidValue' : undefined);
  const body = { schemas: [ERROR_SCHEMA], status: String(status), ...(scimType && { scimType }), detail: error.message, code: error.code };
  const retryAfter = retryAfterSeconds(error);
  return c.body(JSON.stringify(body), status as 400, { 'content-type': SCIM_CONTENT_TYPE, ...(retryAfter !== undefined && { 'retry-after': String(retryAfter) }) });
}

function send(c: Context, body: Record<string, unknown>, status: 200 | 201 = 200): Response {
  const version = (body.meta as { version?: unknown } | undefined)?.version;
  const headers: Record<string, string> = { 'content-type': SCIM_CONTENT_TYPE };
  if (typeof version === 'string') headers.etag = version;
  if (status === 201) headers.location = String((body.meta as { location: string }).location);
  return c.body(JSON.stringify(body), status, headers);
}

/** RFC 7644 §3.1/§8.1: bodies are application/scim+json; application/json is accepted too. */
async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(scim\+)?json\s*(;|$)/i.test(type)) throw scimError(null, 'send the body as application/scim+json (or application/json)', 415);
  let body: unknown;
  try {
    body = JSON.parse(await c.req.text());
  } catch {
    throw scimError('invalidSyntax', 'the body is not valid JSON');
  }
  const problem = inspectJson(body, MAX_JSON_DEPTH);
  if (problem === 'deep') throw scimError('invalidSyntax', `the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (problem === 'nul') throw scimError('invalidValue', 'strings must not contain the NUL character');
  if (problem === 'surrogate') throw scimError('invalidValue', 'strings must be well-formed Unicode (no lone UTF-16 surrogates)');
  return body;
}

function listOf(resources: Record<string, unknown>[]): Record<string, unknown> {
  return { schemas: [LIST_RESPONSE_SCHEMA], totalResults: resources.length, startIndex: 1, itemsPerPage: resources.length, Resources: resources };
}

/**
 * SCIM 2.0 (RFC 7643, RFC 7644) for identity providers: Okta and Entra ID provision people and groups
 * here and so drive joiner, mover and leaver. Authenticated by its own bearer token
 * (`MANDATE_SCIM_TOKEN`); without one configured, SCIM is off and every request is refused (fail closed).
 */
export function registerScimRoutes(app: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const scim = new Hono<AppEnv>();
  const baseUrl = `${services.config.publicUrl}${SCIM_BASE_PATH}`;
  const service = new ScimService({
    store: services.store,
    identity: services.identity,
    baseUrl,
    // A group that approves access is managed in Mandate unless the deployment hands it to the IdP: a
    // compromised identity provider must not be able to make someone an approver (threat model, review 2).
    guardGroup: async (group, change, actor) => {
      if (services.config.scimManagesApproverGroups) return;
      const uses = await approverGroupUses(group.id, { rules: () => services.governance.requests.listRules(), gatewayApproverGroup: () => services.gateway.settings.current.approverGroupId });
      if (uses.length === 0) return;
      await services.audit.append({ actor, action: change === 'delete' ? 'scim.group.delete' : 'scim.group.members', target: group.id, outcome: 'deny', details: { reason: 'approver_group', uses } });
      throw scimError(null, `group ${group.displayName} approves access (${uses.join('; ')}): its members are managed in Mandate, not through SCIM (MANDATE_SCIM_MANAGES_APPROVER_GROUPS)`, 403);
    },
  });

  scim.onError((error, c) => {
    const coded = toMandateError(error);
    if (coded.status >= 500) services.logger.error({ err: error, path: c.req.path }, 'SCIM request failed');
    return scimErrorResponse(c, coded);
  });

  const refuse = (c: Context, detail: string) => {
    c.header('WWW-Authenticate', 'Bearer realm="mandate-scim"');
    return scimError(null, detail, 401);
  };
  scim.use('*', async (c, next) => {
    if (!services.config.scimToken) throw refuse(c, 'SCIM provisioning is disabled: set MANDATE_SCIM_TOKEN');
    await next();
  });
  scim.use(
    '*',
    bearerAuth({
      authenticators: [(token) => (services.config.scimToken && constantTimeEqual(token, services.config.scimToken) ? 'scim' : undefined)],
      schemeCaseInsensitive: true,
      refuse: (c, presented) => {
        // Never the presented token: only that one was refused, and where.
        services.logger.warn({ path: c.req.path, method: c.req.method, presented: presented ? 'bearer' : 'none' }, 'SCIM authentication failed');
        return refuse(c, 'a valid SCIM bearer token is required');
      },
    }),
  );

  const doc = (method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, summary: string, status = 200) =>
    docs.add({ method, path: `${SCIM_BASE_PATH}${path}`, tag: 'scim', summary: `${summary} (SCIM token; errors are SCIM error JSON, RFC 7644 §3.12)`, success: { status, description: 'application/scim+json' } });

  // ---- discovery (RFC 7644 §4) --------------------------------------------------------------------
  doc('get', '/ServiceProviderConfig', 'SCIM service provider configuration');
  scim.get('/ServiceProviderConfig', (c) => send(c, serviceProviderConfig(baseUrl)));

  doc('get', '/ResourceTypes', 'SCIM resource types');
  scim.get('/ResourceTypes', (c) => send(c, listOf(resourceTypeDocuments(baseUrl))));
  doc('get', '/ResourceTypes/{id}', 'A SCIM resource type');
  scim.get('/ResourceTypes/:id', (c) => {
    const found = resourceTypeDocuments(baseUrl).find((r) => r.id === c.req.param('id'));
    if (!found) throw scimError(null, `resource type ${c.req.param('id')} not found`, 404);
    return send(c, found);
  });

  doc('get', '/Schemas', 'SCIM schemas');
  scim.get('/Schemas', (c) => send(c, listOf(schemaDocuments(baseUrl))));
  doc('get', '/Schemas/{id}', 'A SCIM schema');
  scim.get('/Schemas/:id', (c) => {
    const found = schemaDocuments(baseUrl).find((s) => s.id === c.req.param('id'));
    if (!found) throw scimError(null, `schema ${c.req.param('id')} not found`, 404);
    return send(c, found);
  });

  // ---- resources (RFC 7644 §3) ----------------------------------------------------------------------
  const resources = [
    { path: '/Users', kind: 'User', create: service.createUser, get: service.getUser, list: service.listUsers, replace: service.replaceUser, patch: service.patchUser, remove: service.deleteUser },
    { path: '/Groups', kind: 'Group', create: service.createGroup, get: service.getGroup, list: service.listGroups, replace: service.replaceGroup, patch: service.patchGroup, remove: service.deleteGroup },
  ] as const;
  // A query value goes into SQL (a filter's value) or is matched against names: PostgreSQL text cannot
  // hold U+0000 and the query failed as a 500, so it is refused like a body string with one.
  const query = (c: Context, name: string): string | undefined => {
    const value = c.req.query(name);
    if (value?.includes('\u0000')) throw scimError(name === 'filter' ? 'invalidFilter' : 'invalidValue', `${name} must not contain the NUL character`);
    return value;
  };
  for (const r of resources) {
    const projection = (c: Context) => ({ attributes: query(c, 'attributes'), excludedAttributes: query(c, 'excludedAttributes') });
    const ifMatch = (c: Context) => c.req.header('if-match');

    doc('post', r.path, `Create a ${r.kind}`, 201);
    scim.post(r.path, async (c) => send(c, await r.create.call(service, await readJson(c), c.get('actor')), 201));

    doc('get', r.path, `List ${r.kind}s (filter, startIndex, count, attributes, excludedAttributes)`);
    scim.get(r.path, async (c) =>
      send(c, await r.list.call(service, { filter: query(c, 'filter'), startIndex: query(c, 'startIndex'), count: query(c, 'count'), ...projection(c) })),
    );

    doc('get', `${r.path}/{id}`, `Get a ${r.kind}`);
    scim.get(`${r.path}/:id`, async (c) => send(c, await r.get.call(service, c.req.param('id'), projection(c))));

    doc('put', `${r.path}/{id}`, `Replace a ${r.kind}`);
    scim.put(`${r.path}/:id`, async (c) => send(c, await r.replace.call(service, c.req.param('id'), await readJson(c), c.get('actor'), ifMatch(c))));

    doc('patch', `${r.path}/{id}`, `Patch a ${r.kind} (PatchOp)`);
    scim.patch(`${r.path}/:id`, async (c) => send(c, await r.patch.call(service, c.req.param('id'), await readJson(c), c.get('actor'), ifMatch(c))));

    doc('delete', `${r.path}/{id}`, `Delete a ${r.kind}${r.kind === 'User' ? ' (leaver)' : ''}`, 204);
    scim.delete(`${r.path}/:id`, async (c) => {
      await r.remove.call(service, c.req.param('id'), c.get('actor'), ifMatch(c));
      return c.body(null, 204);
    });
  }

  scim.all('*', (c) => {
    throw scimError(null, `no SCIM endpoint for ${c.req.method} ${c.req.path}`, 404);
  });

  app.route(SCIM_BASE_PATH, scim);
}
