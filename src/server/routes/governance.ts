import { z } from 'zod';
import { MandateError } from '../../core/errors.ts';
import { DEFAULT_STAGES, ENTITLEMENT_RE } from '../../governance/index.ts';
import { defineRoute, itemsResponse, pageResponse, removedResponse, type ParamSpec, type Router } from '../define-route.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { pageQuery, readParam } from '../validation.ts';

// Printable ASCII only: ids never contain spaces or control characters (PostgreSQL refuses NUL in text).
const id = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'an id');
/** Free text: any characters but NUL, which PostgreSQL cannot store. */
const text = (max: number) => z.string().max(max).refine((v) => !v.includes('\u0000'), 'must not contain NUL characters');
const entitlement = z.string().max(233).regex(ENTITLEMENT_RE, 'expected <kind>:<value> (e.g. role:admin, tool:crm/export), no spaces or wildcards');
// Patterns may use `*`; the service checks them in detail.
const pattern = z.string().min(1).max(233).regex(/^[\x21-\x7e]+$/, 'printable characters without spaces');
const comment = text(2000).optional();
const isoTime = z.iso.datetime({ offset: true });

export const grantCreate = z.object({ principalId: id, entitlement, expiresAt: isoTime.optional(), reason: text(2000).optional() }).strict();

const approver = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('owner') }).strict(),
  z.object({ kind: z.literal('manager') }).strict(),
  z.object({ kind: z.literal('human'), id }).strict(),
  z.object({ kind: z.literal('group'), id }).strict(),
]);
const stage = z.object({ approvers: z.array(approver).min(1).max(20), required: z.number().int().min(1).max(20).default(1) }).strict();
export const approvalRuleCreate = z
  .object({
    pattern,
    /** Every stage must be satisfied; a stage needs `required` distinct eligible approvals (N of M). */
    stages: z.array(stage).min(1).max(5).optional(),
    /** Shorthand for one stage. */
    approvers: z.array(approver).min(1).max(20).optional(),
    required: z.number().int().min(1).max(20).optional(),
    maxDurationSeconds: z.number().int().min(1).max(90 * 86_400).optional(),
  })
  .strict()
  .refine((b) => (b.stages === undefined) !== (b.approvers === undefined), { message: 'give either stages or approvers' })
  .refine((b) => b.stages === undefined || b.required === undefined, { message: 'required goes inside each stage' });

export const accessRequestCreate = z
  .object({
    principalId: id,
    entitlement,
    durationSeconds: z.number().int().min(1).max(90 * 86_400),
    justification: text(2000).pipe(z.string().trim().min(1)),
    requesterId: id.optional(),
  })
  .strict();
export const accessDecision = z.object({ approverId: id, comment }).strict();
const revokeBody = z.object({ reason: text(2000).optional() }).strict();

export const sodRuleCreate = z
  .object({
    name: text(200).pipe(z.string().trim().min(1)),
    description: text(2000).optional(),
    entitlements: z.array(pattern).max(50).optional(),
    pairs: z.array(z.tuple([pattern, pattern])).max(200).optional(),
    countDelegation: z.boolean().optional(),
    enforce: z.enum(['grant', 'session', 'both']).optional(),
  })
  .strict();

const scope = z.union([
  z.object({ all: z.literal(true) }).strict(),
  z.object({ department: text(200).pipe(z.string().trim().min(1)) }).strict(),
  z.object({ tag: text(100).pipe(z.string().trim().min(1)) }).strict(),
  z.object({ ownerId: id }).strict(),
]);
export const certificationCreate = z
  .object({
    name: text(200).pipe(z.string().trim().min(1)),
    scope,
    reviewers: z.union([z.literal('owners'), z.object({ humanIds: z.array(id).min(1).max(100) }).strict()]).optional(),
    deadline: isoTime,
    onNoAnswer: z.enum(['revoke', 'keep']).optional(),
    webhookUrl: z.url().max(2000).optional(),
    remindBeforeSeconds: z.array(z.number().int().min(60).max(365 * 86_400)).min(1).max(10).optional(),
  })
  .strict();
export const certificationDecision = z.discriminatedUnion('decision', [
  z.object({ reviewerId: id, decision: z.literal('keep'), comment }).strict(),
  z.object({ reviewerId: id, decision: z.literal('revoke'), comment }).strict(),
  z.object({ reviewerId: id, decision: z.literal('delegate'), to: id, comment }).strict(),
]);

/** A path parameter that is an id; anything else cannot name a resource (404, never a database error). */
const idParam = (name: string): ParamSpec<z.ZodString> => ({ schema: z.string().regex(/^[\x21-\x7e]{1,64}$/), notFound: () => new MandateError('NOT_FOUND', `no such ${name}`, 404) });
const byId = { id: idParam('id') };

export function registerGovernanceRoutes(admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { grants, requests, sod, certifications } = services.governance;
  const tag = 'governance';
  const route = defineRoute;

  // ---- grants -----------------------------------------------------------------------------------------
  const grantList = z.object({ principalId: id.optional(), entitlement: text(233).optional(), status: z.enum(['active', 'revoked', 'expired']).optional(), kind: z.enum(['standing', 'jit']).optional(), ...pageQuery }).strict();
  route(admin, docs, { method: 'get', path: '/api/v1/grants', tag, summary: 'List grants (filter by principal, entitlement, status, kind)', query: grantList, response: pageResponse, errors: [], permission: 'grants.list' }, async (c, { query }) =>
    c.json(await grants.list(query)),
  );

  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/grants',
      tag,
      summary: 'Grant an entitlement (standing; optional expiry); separation of duties checked',
      body: grantCreate,
      response: { status: 201, description: 'The grant' },
      errors: ['SOD_CONFLICT', 'GRANT_EXISTS', 'PRINCIPAL_NOT_FOUND', 'PRINCIPAL_DECOMMISSIONED', 'GRANT_EXPIRY_INVALID'],
      permission: 'grants.create',
    },
    async (c, { body }) => c.json(await grants.grant(body, c.get('actor')), 201),
  );

  route(admin, docs, { method: 'get', path: '/api/v1/grants/{id}', tag, summary: 'Get a grant', params: byId, response: { status: 200, description: 'The grant' }, errors: ['NOT_FOUND', 'GRANT_NOT_FOUND'], permission: 'grants.read' }, async (c, { params }) =>
    c.json(await grants.get(params.id)),
  );

  const revokeQuery = z.object({ reason: text(2000).optional() }).strict();
  route(
    admin,
    docs,
    { method: 'delete', path: '/api/v1/grants/{id}', tag, summary: 'Revoke a grant now (takes effect in decisions at once)', params: byId, query: revokeQuery, response: { status: 200, description: 'The revoked grant' }, errors: ['NOT_FOUND', 'GRANT_NOT_FOUND', 'GRANT_NOT_ACTIVE'], permission: 'grants.revoke' },
    async (c, { params, query }) => c.json(await grants.revoke(params.id, query.reason ?? null, c.get('actor'))),
  );

  route(
    admin,
    docs,
    { method: 'get', path: '/api/v1/principals/{id}/entitlements', tag, summary: 'What a principal holds now, and how it projects into Cedar', params: byId, response: { status: 200, description: '{principalId, entitlements, cedar: {attrs, parents}}' }, errors: ['NOT_FOUND'], permission: 'principals.entitlements.read' },
    async (c, { params }) => {
      const principalId = params.id;
      const cedar = await services.governance.cedarEntitlements(principalId);
      return c.json({ principalId, entitlements: cedar.attrs.entitlements, cedar });
    },
  );

  // ---- approval rules ---------------------------------------------------------------------------------
  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/access-rules',
      tag,
      summary: 'Approval rule for entitlements matching a pattern (owner, manager, human, group; N of M per stage)',
      body: approvalRuleCreate,
      response: { status: 201, description: 'The rule' },
      errors: ['APPROVAL_RULE_EXISTS', 'APPROVER_NOT_FOUND', 'ACCESS_DURATION_TOO_LONG'],
      permission: 'access.rules.create',
    },
    async (c, { body }) => {
      const stages = body.stages ?? [{ approvers: body.approvers!, required: body.required ?? 1 }];
      return c.json(await requests.createRule({ pattern: body.pattern, stages, maxDurationSeconds: body.maxDurationSeconds }, c.get('actor')), 201);
    },
  );
  route(admin, docs, { method: 'get', path: '/api/v1/access-rules', tag, summary: 'Approval rules', response: { status: 200, description: '{items, default}' }, errors: [], permission: 'access.rules.list' }, async (c) =>
    c.json({ items: await requests.listRules(), default: { stages: DEFAULT_STAGES, maxDurationSeconds: requests.maxJitSeconds } }),
  );
  route(
    admin,
    docs,
    { method: 'delete', path: '/api/v1/access-rules/{id}', tag, summary: 'Remove an approval rule (pending requests keep the rule they were made under)', params: byId, response: removedResponse, errors: ['NOT_FOUND'], permission: 'access.rules.delete' },
    async (c, { params }) => {
      await requests.deleteRule(params.id, c.get('actor'));
      return c.body(null, 204);
    },
  );

  // ---- access requests --------------------------------------------------------------------------------
  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/access-requests',
      tag,
      summary: 'Request an entitlement just in time (pending until approved)',
      body: accessRequestCreate,
      response: { status: 201, description: 'The pending request' },
      errors: ['ACCESS_DURATION_TOO_LONG', 'ACCESS_REQUEST_EXISTS', 'SOD_CONFLICT', 'PRINCIPAL_NOT_ACTIVE', 'REQUESTER_INVALID'],
      permission: 'access.requests.create',
    },
    async (c, { body }) => c.json(await requests.create(body, c.get('actor')), 201),
  );

  const requestList = z.object({ status: z.enum(['pending', 'approved', 'denied', 'revoked', 'expired']).optional(), principalId: id.optional(), ...pageQuery }).strict();
  route(admin, docs, { method: 'get', path: '/api/v1/access-requests', tag, summary: 'List access requests', query: requestList, response: pageResponse, errors: [], permission: 'access.requests.list' }, async (c, { query }) =>
    c.json(await requests.list(query)),
  );

  route(
    admin,
    docs,
    { method: 'get', path: '/api/v1/access-requests/{id}', tag, summary: 'Get an access request with its decisions and eligible approvers', params: byId, response: { status: 200, description: 'The request' }, errors: ['NOT_FOUND', 'ACCESS_REQUEST_NOT_FOUND'], permission: 'access.requests.read' },
    async (c, { params }) => {
      const request = await requests.get(params.id);
      const eligibleApprovers = request.status === 'pending' ? await requests.eligibleApprovers(services.store.db, request) : [];
      return c.json({ ...request, eligibleApprovers });
    },
  );

  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/access-requests/{id}/approve',
      tag,
      summary: 'Approve (an eligible active human, not the requester or beneficiary); the final approval grants at once',
      params: byId,
      body: accessDecision,
      response: { status: 200, description: 'The request' },
      errors: ['NOT_FOUND', 'APPROVER_NOT_ELIGIBLE', 'ACCESS_SELF_APPROVAL', 'ACCESS_REQUEST_NOT_PENDING', 'ACCESS_ALREADY_DECIDED', 'SOD_CONFLICT'],
      permission: 'access.requests.approve',
    },
    async (c, { params, body }) => c.json(await requests.approve(params.id, body, c.get('actor'))),
  );

  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/access-requests/{id}/deny',
      tag,
      summary: 'Deny (one eligible denial ends the request)',
      params: byId,
      body: accessDecision,
      response: { status: 200, description: 'The request' },
      errors: ['NOT_FOUND', 'APPROVER_NOT_ELIGIBLE', 'ACCESS_SELF_APPROVAL', 'ACCESS_REQUEST_NOT_PENDING'],
      permission: 'access.requests.deny',
    },
    async (c, { params, body }) => c.json(await requests.deny(params.id, body, c.get('actor'))),
  );

  route(
    admin,
    docs,
    { method: 'post', path: '/api/v1/access-requests/{id}/revoke', tag, summary: 'Revoke an approved request early', body: revokeBody, bodyOptional: true, response: { status: 200, description: 'The request' }, errors: ['NOT_FOUND', 'ACCESS_REQUEST_NOT_ACTIVE'], permission: 'access.requests.revoke' },
    // The body is read before the id here (as it always was): the id is checked in the handler.
    async (c, { body }) => c.json(await requests.revoke(readParam(c, 'id', byId.id.schema, byId.id.notFound), body.reason ?? null, c.get('actor'))),
  );

  // ---- separation of duties ---------------------------------------------------------------------------
  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/sod/rules',
      tag,
      summary: 'Separation-of-duties rule (entitlements any two of which conflict, or pairs)',
      body: sodRuleCreate,
      response: { status: 201, description: 'The rule' },
      errors: ['SOD_RULE_EXISTS', 'SOD_RULE_INVALID', 'ENTITLEMENT_INVALID'],
      permission: 'sod.rules.create',
    },
    async (c, { body }) => c.json(await sod.createRule(body, c.get('actor')), 201),
  );
  route(admin, docs, { method: 'get', path: '/api/v1/sod/rules', tag, summary: 'Separation-of-duties rules', response: itemsResponse, errors: [], permission: 'sod.rules.list' }, async (c) => c.json({ items: await sod.listRules() }));
  route(admin, docs, { method: 'delete', path: '/api/v1/sod/rules/{id}', tag, summary: 'Remove a separation-of-duties rule', params: byId, response: removedResponse, errors: ['NOT_FOUND'], permission: 'sod.rules.delete' }, async (c, { params }) => {
    await sod.deleteRule(params.id, c.get('actor'));
    return c.body(null, 204);
  });
  route(admin, docs, { method: 'get', path: '/api/v1/sod/violations', tag, summary: 'Existing holdings that break a rule (findings)', response: itemsResponse, errors: [], permission: 'sod.violations.list' }, async (c) =>
    c.json({ items: await sod.violations() }),
  );
  route(admin, docs, { method: 'get', path: '/api/v1/sod/session-pairs', tag, summary: 'Tool pairs the gateway keeps out of one session', response: itemsResponse, errors: [], permission: 'sod.session-pairs.list' }, (c) =>
    c.json({ items: sod.sessionToolPairs() }),
  );

  // ---- certification campaigns ------------------------------------------------------------------------
  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/certifications',
      tag,
      summary: 'Start a certification campaign (one item per principal and entitlement in scope); the webhook secret is shown once',
      body: certificationCreate,
      response: { status: 201, description: '{campaign, items, webhookSecret?}' },
      errors: ['CERTIFICATION_DEADLINE_INVALID', 'REVIEWER_INVALID', 'WEBHOOK_URL_INSECURE'],
      permission: 'certifications.create',
    },
    async (c, { body }) => c.json(await certifications.create(body, c.get('actor')), 201),
  );
  route(admin, docs, { method: 'get', path: '/api/v1/certifications', tag, summary: 'Certification campaigns', response: itemsResponse, errors: [], permission: 'certifications.list' }, async (c) =>
    c.json({ items: await certifications.list() }),
  );
  route(
    admin,
    docs,
    { method: 'get', path: '/api/v1/certifications/{id}', tag, summary: 'A campaign', params: byId, response: { status: 200, description: 'The campaign' }, errors: ['NOT_FOUND', 'CERTIFICATION_NOT_FOUND'], permission: 'certifications.read' },
    async (c, { params }) => c.json(await certifications.get(params.id)),
  );
  const itemQuery = z.object({ status: z.enum(['pending', 'keep', 'revoke']).optional(), reviewerId: id.optional() }).strict();
  route(
    admin,
    docs,
    { method: 'get', path: '/api/v1/certifications/{id}/items', tag, summary: "A campaign's items (filter by status or reviewer)", params: byId, query: itemQuery, response: itemsResponse, errors: ['NOT_FOUND'], permission: 'certifications.items.list' },
    async (c, { params, query }) => c.json({ items: await certifications.items(params.id, query) }),
  );
  route(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/certifications/{id}/items/{itemId}/decision',
      tag,
      summary: 'A reviewer keeps, revokes (at once) or delegates an item',
      params: { id: idParam('id'), itemId: idParam('itemId') },
      body: certificationDecision,
      response: { status: 200, description: 'The item' },
      errors: ['NOT_FOUND', 'REVIEWER_NOT_ASSIGNED', 'CERTIFICATION_CLOSED', 'CERTIFICATION_ITEM_DECIDED', 'DELEGATE_INVALID'],
      permission: 'certifications.items.decide',
    },
    async (c, { params, body }) => c.json(await certifications.decide(params.id, params.itemId, body, c.get('actor'))),
  );
  route(
    admin,
    docs,
    { method: 'get', path: '/api/v1/certifications/{id}/report', tag, summary: 'Campaign report: counts, who decided what, revocations made', params: byId, response: { status: 200, description: 'The report' }, errors: ['NOT_FOUND'], permission: 'certifications.report.read' },
    async (c, { params }) => c.json(await certifications.report(params.id)),
  );
}
