import { z } from 'zod';
import { previewPolicyImpact, validateAgainstMandateSchema } from '../../pdp/index.ts';
import { validatePolicies } from '../../policy/index.ts';
import { defineRoute, itemsResponse, type Router } from '../define-route.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { MandateError } from '../../core/errors.ts';
import { readBody, rowNumberParam } from '../validation.ts';

const MAX_POLICY_TEXT = 2 * 1024 * 1024;
// `0`, `-1`, `1.5`, `abc` name no version: the same 404 as a version that does not exist.
const versionNotFound = () => new MandateError('POLICY_VERSION_NOT_FOUND', 'no such policy version', 404);
const uid = z.object({ type: z.string().min(1).max(256), id: z.string().max(1024) }).strict();

export function registerPolicyRoutes(admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { pdp } = services;
  const tag = 'policy';
  const version = { version: { schema: rowNumberParam, notFound: versionNotFound } };

  // A template link instantiates a Cedar template (`?principal` / `?resource` slots), e.g. "agent may call tool T".
  const link = z.object({ templateId: z.string().min(1).max(200), newId: z.string().min(1).max(200), values: z.partialRecord(z.enum(['?principal', '?resource']), uid) }).strict();
  const applyBody = z.object({ cedar: z.string().max(MAX_POLICY_TEXT), mode: z.enum(['enforce', 'log-only']).optional(), note: z.string().max(1000).optional(), links: z.array(link).max(100_000).optional(), force: z.boolean().optional() }).strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'put',
      path: '/api/v1/policies',
      tag,
      summary: "Apply a Cedar policy set (with optional template links) as a new version and activate it; refused unless it validates against Mandate's schema or `force` is true (audited as forced)",
      body: applyBody,
      response: { status: 200, description: 'The new version' },
      errors: ['POLICY_PARSE', 'POLICY_INVALID', 'POLICY_LINK'],
      permission: 'policies.apply',
    },
    async (c, { body }) => c.json(await pdp.apply(body.cedar, { mode: body.mode, note: body.note, links: body.links, force: body.force }, c.get('actor'))),
  );

  defineRoute(admin, docs, { method: 'get', path: '/api/v1/policies', tag, summary: 'The active policy set (Cedar text, version, mode)', response: { status: 200, description: '{version, mode, cedar}' }, errors: [], permission: 'policies.read' }, async (c) =>
    c.json((await pdp.source()) ?? { version: 0, mode: 'enforce', cedar: '', links: [] }),
  );

  defineRoute(admin, docs, { method: 'get', path: '/api/v1/policies/versions', tag, summary: 'Every stored version, newest first', response: itemsResponse, errors: [], permission: 'policies.versions.list' }, async (c) =>
    c.json({ items: await pdp.versions() }),
  );

  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/policies/versions/{version}', tag, summary: 'One version’s Cedar text', params: version, response: { status: 200, description: '{version, mode, cedar}' }, errors: ['POLICY_VERSION_NOT_FOUND'], permission: 'policies.versions.read' },
    async (c, { params }) => {
      const found = await pdp.source(params.version);
      if (!found) throw versionNotFound();
      return c.json(found);
    },
  );

  // The body is optional (no body: not forced), so it is read in the handler rather than declared.
  const activateBody = z.object({ force: z.boolean().optional() }).strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/policies/versions/{version}/activate',
      tag,
      summary: "Restore a previous version; refused unless it validates against Mandate's schema or the optional body says `{\"force\": true}` (audited as forced)",
      params: version,
      response: { status: 200, description: 'The activated version' },
      errors: ['POLICY_VERSION_NOT_FOUND', 'POLICY_INVALID', 'REQUEST_CONTENT_TYPE', 'REQUEST_JSON_INVALID', 'REQUEST_INVALID'],
      permission: 'policies.activate',
    },
    async (c, { params }) => {
      const body = c.req.header('content-type') === undefined ? {} : await readBody(c, activateBody);
      return c.json(await pdp.activate(params.version, c.get('actor'), { force: body.force }));
    },
  );

  const validateBody = z.object({ cedar: z.string().max(MAX_POLICY_TEXT), schema: z.string().max(MAX_POLICY_TEXT).optional(), links: z.array(link).max(100_000).optional() }).strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/policies/validate',
      tag,
      summary: "Validate policies against a Cedar schema, Mandate's own by default (errors with line and column); changes nothing",
      body: validateBody,
      response: { status: 200, description: '{valid, issues, schema}' },
      errors: ['POLICY_PARSE', 'POLICY_SCHEMA'],
      permission: 'policies.validate',
    },
    async (c, { body }) => {
      const issues = body.schema === undefined ? validateAgainstMandateSchema(body.cedar, body.links) : validatePolicies(body.cedar, body.schema, body.links);
      return c.json({ valid: !issues.some((i) => i.severity === 'error'), issues, schema: body.schema === undefined ? 'mandate' : 'request' });
    },
  );

  const previewBody = z
    .object({ cedar: z.string().max(MAX_POLICY_TEXT), from: z.iso.datetime({ offset: true }).optional(), to: z.iso.datetime({ offset: true }).optional(), limit: z.number().int().min(0).max(10_000).optional() })
    .strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/policies/preview',
      tag,
      summary: 'Impact preview: replay recorded decisions (default: the last 7 days) against a draft and list every decision that would change',
      body: previewBody,
      response: { status: 200, description: '{replayed, changed, becameAllow, becameDeny, skipped, decisions}' },
      errors: ['POLICY_PARSE'],
      permission: 'policies.preview',
    },
    async (c, { body }) => {
      const to = body.to ? new Date(body.to).toISOString() : new Date(Date.now() + 1000).toISOString();
      const from = body.from ? new Date(body.from).toISOString() : new Date(Date.now() - 7 * 86_400_000).toISOString();
      return c.json(await previewPolicyImpact(services.store, pdp, body.cedar, { from, to, limit: body.limit ?? 100 }));
    },
  );

  const entitiesBody = z.union([z.array(z.unknown()).max(100_000), z.object({ entities: z.array(z.unknown()).max(100_000), replace: z.boolean().optional() }).strict()]);
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/entities',
      tag,
      summary: 'Import Cedar entities (cedar-wasm entity JSON; {entities, replace} to replace all imported ones)',
      body: entitiesBody,
      response: { status: 200, description: '{imported}' },
      errors: ['POLICY_ENTITIES_INVALID', 'POLICY_ENTITY_CYCLE', 'ENTITY_HIERARCHY_TOO_DEEP'],
      permission: 'entities.import',
    },
    async (c, { body }) => {
      const { entities, replace } = Array.isArray(body) ? { entities: body, replace: false } : body;
      return c.json(await pdp.importEntities(entities, c.get('actor'), { replace: replace ?? false }));
    },
  );

  const decisionBody = z.object({ principal: uid, action: uid, resource: uid, context: z.record(z.string(), z.unknown()).optional(), explain: z.boolean().optional() }).strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/decisions',
      tag,
      summary: 'Decide a Cedar request with the active policies; explain returns the determining policies and the attributes they read',
      body: decisionBody,
      response: { status: 200, description: '{decision, policyDecision, reasons, errors, mode, policyVersion, explanation?}' },
      errors: [],
      permission: 'decisions.evaluate',
    },
    async (c, { body }) => {
      const result = await pdp.decideAndLog({ principal: body.principal, action: body.action, resource: body.resource, context: body.context ?? {} }, { explain: body.explain ?? false }, { actor: c.get('actor'), source: 'api' });
      return c.json(result);
    },
  );
}
