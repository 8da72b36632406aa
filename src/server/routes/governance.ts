import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { MandateError } from '../../core/errors.ts';
import { DEFAULT_STAGES, ENTITLEMENT_RE } from '../../governance/index.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { pageQuery, readBody, readQuery } from '../validation.ts';

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
function param(c: Context, name: string): string {
  const value = c.req.param(name) ?? '';
  if (!/^[\x21-\x7e]{1,64}$/.test(value)) throw new MandateError('NOT_FOUND', `no such ${name}`, 404);
  return value;
}

/** Reads an optional JSON body (revoke endpoints accept an empty request). */
async function optionalBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  if ((c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding')) return schema.parse({});
  return readBody(c, schema);
}

export function registerGovernanceRoutes(api: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const { grants, requests, sod, certifications } = services.governance;
  const tag = 'governance';

  // ---- grants -----------------------------------------------------------------------------------------
  const grantList = z.object({ principalId: id.optional(), entitlement: text(233).optional(), status: z.enum(['active', 'revoked', 'expired']).optional(), kind: z.enum(['standing', 'jit']).optional(), ...pageQuery }).strict();
  docs.add({ method: 'get', path: '/api/v1/grants', tag, summary: 'List grants (filter by principal, entitlement, status, kind)', query: grantList, success: { status: 200, description: '{items, next}' } });
  api.get('/grants', async (c) => c.json(await grants.list(readQuery(c, grantList))));

  docs.add({ method: 'post', path: '/api/v1/grants', tag, summary: 'Grant an entitlement (standing; optional expiry); separation of duties checked', body: grantCreate, success: { status: 201, description: 'The grant' }, errors: ['SOD_CONFLICT', 'GRANT_EXISTS', 'PRINCIPAL_NOT_FOUND', 'PRINCIPAL_DECOMMISSIONED', 'GRANT_EXPIRY_INVALID'] });
  api.post('/grants', async (c) => c.json(await grants.grant(await readBody(c, grantCreate), c.get('actor')), 201));

  docs.add({ method: 'get', path: '/api/v1/grants/{id}', tag, summary: 'Get a grant', success: { status: 200, description: 'The grant' }, errors: ['GRANT_NOT_FOUND'] });
  api.get('/grants/:id', async (c) => c.json(await grants.get(param(c, 'id'))));

  const revokeQuery = z.object({ reason: text(2000).optional() }).strict();
  docs.add({ method: 'delete', path: '/api/v1/grants/{id}', tag, summary: 'Revoke a grant now (takes effect in decisions at once)', query: revokeQuery, success: { status: 200, description: 'The revoked grant' }, errors: ['GRANT_NOT_FOUND', 'GRANT_NOT_ACTIVE'] });
  api.delete('/grants/:id', async (c) => c.json(await grants.revoke(param(c, 'id'), readQuery(c, revokeQuery).reason ?? null, c.get('actor'))));

  docs.add({ method: 'get', path: '/api/v1/principals/{id}/entitlements', tag, summary: 'What a principal holds now, and how it projects into Cedar', success: { status: 200, description: '{principalId, entitlements, cedar: {attrs, parents}}' } });
  api.get('/principals/:id/entitlements', async (c) => {
    const principalId = param(c, 'id');
    const cedar = await services.governance.cedarEntitlements(principalId);
    return c.json({ principalId, entitlements: cedar.attrs.entitlements, cedar });
  });

  // ---- approval rules ---------------------------------------------------------------------------------
  docs.add({ method: 'post', path: '/api/v1/access-rules', tag, summary: 'Approval rule for entitlements matching a pattern (owner, manager, human, group; N of M per stage)', body: approvalRuleCreate, success: { status: 201, description: 'The rule' }, errors: ['APPROVAL_RULE_EXISTS', 'APPROVER_NOT_FOUND', 'ACCESS_DURATION_TOO_LONG'] });
  api.post('/access-rules', async (c) => {
    const body = await readBody(c, approvalRuleCreate);
    const stages = body.stages ?? [{ approvers: body.approvers!, required: body.required ?? 1 }];
    return c.json(await requests.createRule({ pattern: body.pattern, stages, maxDurationSeconds: body.maxDurationSeconds }, c.get('actor')), 201);
  });
  docs.add({ method: 'get', path: '/api/v1/access-rules', tag, summary: 'Approval rules', success: { status: 200, description: '{items, default}' } });
  api.get('/access-rules', async (c) => c.json({ items: await requests.listRules(), default: { stages: DEFAULT_STAGES, maxDurationSeconds: requests.maxJitSeconds } }));
  docs.add({ method: 'delete', path: '/api/v1/access-rules/{id}', tag, summary: 'Remove an approval rule (pending requests keep the rule they were made under)', success: { status: 204, description: 'Removed' } });
  api.delete('/access-rules/:id', async (c) => {
    await requests.deleteRule(param(c, 'id'), c.get('actor'));
    return c.body(null, 204);
  });

  // ---- access requests --------------------------------------------------------------------------------
  docs.add({ method: 'post', path: '/api/v1/access-requests', tag, summary: 'Request an entitlement just in time (pending until approved)', body: accessRequestCreate, success: { status: 201, description: 'The pending request' }, errors: ['ACCESS_DURATION_TOO_LONG', 'ACCESS_REQUEST_EXISTS', 'SOD_CONFLICT', 'PRINCIPAL_NOT_ACTIVE', 'REQUESTER_INVALID'] });
  api.post('/access-requests', async (c) => c.json(await requests.create(await readBody(c, accessRequestCreate), c.get('actor')), 201));

  const requestList = z.object({ status: z.enum(['pending', 'approved', 'denied', 'revoked', 'expired']).optional(), principalId: id.optional(), ...pageQuery }).strict();
  docs.add({ method: 'get', path: '/api/v1/access-requests', tag, summary: 'List access requests', query: requestList, success: { status: 200, description: '{items, next}' } });
  api.get('/access-requests', async (c) => c.json(await requests.list(readQuery(c, requestList))));

  docs.add({ method: 'get', path: '/api/v1/access-requests/{id}', tag, summary: 'Get an access request with its decisions and eligible approvers', success: { status: 200, description: 'The request' }, errors: ['ACCESS_REQUEST_NOT_FOUND'] });
  api.get('/access-requests/:id', async (c) => {
    const request = await requests.get(param(c, 'id'));
    const eligibleApprovers = request.status === 'pending' ? await requests.eligibleApprovers(services.store.db, request) : [];
    return c.json({ ...request, eligibleApprovers });
  });

  docs.add({ method: 'post', path: '/api/v1/access-requests/{id}/approve', tag, summary: 'Approve (an eligible active human, not the requester or beneficiary); the final approval grants at once', body: accessDecision, success: { status: 200, description: 'The request' }, errors: ['APPROVER_NOT_ELIGIBLE', 'ACCESS_SELF_APPROVAL', 'ACCESS_REQUEST_NOT_PENDING', 'ACCESS_ALREADY_DECIDED', 'SOD_CONFLICT'] });
  api.post('/access-requests/:id/approve', async (c) => c.json(await requests.approve(param(c, 'id'), await readBody(c, accessDecision), c.get('actor'))));

  docs.add({ method: 'post', path: '/api/v1/access-requests/{id}/deny', tag, summary: 'Deny (one eligible denial ends the request)', body: accessDecision, success: { status: 200, description: 'The request' }, errors: ['APPROVER_NOT_ELIGIBLE', 'ACCESS_SELF_APPROVAL', 'ACCESS_REQUEST_NOT_PENDING'] });
  api.post('/access-requests/:id/deny', async (c) => c.json(await requests.deny(param(c, 'id'), await readBody(c, accessDecision), c.get('actor'))));

  docs.add({ method: 'post', path: '/api/v1/access-requests/{id}/revoke', tag, summary: 'Revoke an approved request early', body: revokeBody, success: { status: 200, description: 'The request' }, errors: ['ACCESS_REQUEST_NOT_ACTIVE'] });
  api.post('/access-requests/:id/revoke', async (c) => {
    const body = await optionalBody(c, revokeBody);
    return c.json(await requests.revoke(param(c, 'id'), body.reason ?? null, c.get('actor')));
  });

  // ---- separation of duties ---------------------------------------------------------------------------
  docs.add({ method: 'post', path: '/api/v1/sod/rules', tag, summary: 'Separation-of-duties rule (entitlements any two of which conflict, or pairs)', body: sodRuleCreate, success: { status: 201, description: 'The rule' }, errors: ['SOD_RULE_EXISTS', 'SOD_RULE_INVALID', 'ENTITLEMENT_INVALID'] });
  api.post('/sod/rules', async (c) => c.json(await sod.createRule(await readBody(c, sodRuleCreate), c.get('actor')), 201));
  docs.add({ method: 'get', path: '/api/v1/sod/rules', tag, summary: 'Separation-of-duties rules', success: { status: 200, description: '{items}' } });
  api.get('/sod/rules', async (c) => c.json({ items: await sod.listRules() }));
  docs.add({ method: 'delete', path: '/api/v1/sod/rules/{id}', tag, summary: 'Remove a separation-of-duties rule', success: { status: 204, description: 'Removed' } });
  api.delete('/sod/rules/:id', async (c) => {
    await sod.deleteRule(param(c, 'id'), c.get('actor'));
    return c.body(null, 204);
  });
  docs.add({ method: 'get', path: '/api/v1/sod/violations', tag, summary: 'Existing holdings that break a rule (findings)', success: { status: 200, description: '{items}' } });
  api.get('/sod/violations', async (c) => c.json({ items: await sod.violations() }));
  docs.add({ method: 'get', path: '/api/v1/sod/session-pairs', tag, summary: 'Tool pairs the gateway keeps out of one session', success: { status: 200, description: '{items}' } });
  api.get('/sod/session-pairs', (c) => c.json({ items: sod.sessionToolPairs() }));

  // ---- certification campaigns ------------------------------------------------------------------------
  docs.add({ method: 'post', path: '/api/v1/certifications', tag, summary: 'Start a certification campaign (one item per principal and entitlement in scope); the webhook secret is shown once', body: certificationCreate, success: { status: 201, description: '{campaign, items, webhookSecret?}' }, errors: ['CERTIFICATION_DEADLINE_INVALID', 'REVIEWER_INVALID', 'WEBHOOK_URL_INSECURE'] });
  api.post('/certifications', async (c) => c.json(await certifications.create(await readBody(c, certificationCreate), c.get('actor')), 201));
  docs.add({ method: 'get', path: '/api/v1/certifications', tag, summary: 'Certification campaigns', success: { status: 200, description: '{items}' } });
  api.get('/certifications', async (c) => c.json({ items: await certifications.list() }));
  docs.add({ method: 'get', path: '/api/v1/certifications/{id}', tag, summary: 'A campaign', success: { status: 200, description: 'The campaign' }, errors: ['CERTIFICATION_NOT_FOUND'] });
  api.get('/certifications/:id', async (c) => c.json(await certifications.get(param(c, 'id'))));
  const itemQuery = z.object({ status: z.enum(['pending', 'keep', 'revoke']).optional(), reviewerId: id.optional() }).strict();
  docs.add({ method: 'get', path: '/api/v1/certifications/{id}/items', tag, summary: "A campaign's items (filter by status or reviewer)", query: itemQuery, success: { status: 200, description: '{items}' } });
  api.get('/certifications/:id/items', async (c) => c.json({ items: await certifications.items(param(c, 'id'), readQuery(c, itemQuery)) }));
  docs.add({ method: 'post', path: '/api/v1/certifications/{id}/items/{itemId}/decision', tag, summary: 'A reviewer keeps, revokes (at once) or delegates an item', body: certificationDecision, success: { status: 200, description: 'The item' }, errors: ['REVIEWER_NOT_ASSIGNED', 'CERTIFICATION_CLOSED', 'CERTIFICATION_ITEM_DECIDED', 'DELEGATE_INVALID'] });
  api.post('/certifications/:id/items/:itemId/decision', async (c) => c.json(await certifications.decide(param(c, 'id'), param(c, 'itemId'), await readBody(c, certificationDecision), c.get('actor'))));
  docs.add({ method: 'get', path: '/api/v1/certifications/{id}/report', tag, summary: 'Campaign report: counts, who decided what, revocations made', success: { status: 200, description: 'The report' } });
  api.get('/certifications/:id/report', async (c) => c.json(await certifications.report(param(c, 'id'))));
}
