import { z } from 'zod';
import { MandateError } from '../core/errors.ts';
import type { AuthorizationRequest, EntityOverride } from '../policy/index.ts';
import type { DecisionLogEntry, DecisionResult, PdpService } from './service.ts';

/**
 * OpenID AuthZEN Authorization API 1.0 over the PDP. Mapping to Cedar:
 *   principal = <subject.type>::"<subject.id>" (type verbatim), action = Action::"<action.name>",
 *   resource = <resource.type>::"<resource.id>", context = the request's context;
 *   subject.properties / resource.properties / action.properties are merged over those entities'
 *   attributes for this request only (the request's values win).
 * A deny is `{"decision": false}`; malformed requests are 400 (AuthZEN §transport).
 */
const properties = z.record(z.string().max(256), z.unknown()).optional();
const subject = z.object({ type: z.string().min(1).max(256), id: z.string().max(1024), properties }).passthrough();
const resource = z.object({ type: z.string().min(1).max(256), id: z.string().max(1024), properties }).passthrough();
const action = z.object({ name: z.string().min(1).max(256), properties }).passthrough();
const context = z.record(z.string().max(256), z.unknown());

export const evaluationRequest = z.object({ subject, action, resource, context: context.optional() }).passthrough();

export const evaluationsRequest = z
  .object({
    subject: subject.optional(),
    action: action.optional(),
    resource: resource.optional(),
    context: context.optional(),
    evaluations: z.array(z.object({ subject: subject.optional(), action: action.optional(), resource: resource.optional(), context: context.optional() }).passthrough()).max(1000).optional(),
    options: z.object({ evaluations_semantic: z.enum(['execute_all', 'deny_on_first_deny', 'permit_on_first_permit']).optional() }).passthrough().optional(),
  })
  .passthrough();

const page = z.object({ next_token: z.string().max(200).optional() }).passthrough().optional();
export const subjectSearchRequest = z.object({ subject: z.object({ type: z.string().min(1).max(256) }).passthrough(), action, resource, context: context.optional(), page }).passthrough();
export const resourceSearchRequest = z.object({ subject, action, resource: z.object({ type: z.string().min(1).max(256) }).passthrough(), context: context.optional(), page }).passthrough();
export const actionSearchRequest = z.object({ subject, resource, context: context.optional(), page }).passthrough();

type Evaluation = z.infer<typeof evaluationRequest>;

export interface AuthzenAnswer {
  decision: boolean;
  context?: Record<string, unknown>;
}

/**
 * Entity types Mandate itself projects (the registry, governance's roles, the gateway's upstreams and
 * tools). Their attributes (`owner`, `status`, `entitlements`, `labels`, …) are what policies trust, so a
 * caller's `properties` must neither overwrite them nor fabricate such an entity: refused, not ignored,
 * so a PEP that forwards untrusted attributes learns of it.
 */
export const RESERVED_ENTITY_TYPES: ReadonlySet<string> = new Set(['Human', 'Group', 'Agent', 'Workload', 'Role', 'McpServer', 'Tool']);

function refuseReserved(type: string, where: string): void {
  if (RESERVED_ENTITY_TYPES.has(type)) {
    throw new MandateError('AUTHZEN_PROPERTIES_RESERVED', `${where}.properties cannot be given for ${/^[AEIOU]/.test(type) ? 'an' : 'a'} ${type}: Mandate's registry supplies its attributes`, 400, { where, entityType: type });
  }
}

function toCedar(evaluation: Evaluation): { request: AuthorizationRequest; overrides: EntityOverride[] } {
  const principal = { type: evaluation.subject.type, id: evaluation.subject.id };
  const actionUid = { type: 'Action', id: evaluation.action.name };
  const resourceUid = { type: evaluation.resource.type, id: evaluation.resource.id };
  const overrides: EntityOverride[] = [];
  if (evaluation.subject.properties) refuseReserved(principal.type, 'subject');
  if (evaluation.resource.properties) refuseReserved(resourceUid.type, 'resource');
  if (evaluation.subject.properties) overrides.push({ uid: principal, attrs: evaluation.subject.properties });
  if (evaluation.resource.properties) overrides.push({ uid: resourceUid, attrs: evaluation.resource.properties });
  if (evaluation.action.properties) overrides.push({ uid: actionUid, attrs: evaluation.action.properties });
  return { request: { principal, action: actionUid, resource: resourceUid, context: evaluation.context ?? {} }, overrides };
}

function answer(result: DecisionResult, explain: boolean): AuthzenAnswer {
  const allowed = result.decision === 'allow';
  if (!explain && result.mode === 'enforce') return { decision: allowed };
  return {
    decision: allowed,
    context: {
      ...(explain && { reason_admin: { policies: result.reasons, errors: result.errors, ...(result.explanation && { reads: result.explanation }) } }),
      ...(result.mode === 'log-only' && { mode: 'log-only', policy_decision: result.policyDecision === 'allow' }),
      policy_version: result.policyVersion,
    },
  };
}

export async function evaluate(pdp: PdpService, evaluation: Evaluation, explain: boolean, log: DecisionLogEntry): Promise<AuthzenAnswer> {
  const { request, overrides } = toCedar(evaluation);
  return answer(await pdp.decideAndLog(request, { explain, overrides }, log), explain);
}

/** Batch evaluation: top-level values are defaults for each item; the item's own values win (AuthZEN §7.1). */
export async function evaluateMany(pdp: PdpService, body: z.infer<typeof evaluationsRequest>, explain: boolean, log: DecisionLogEntry): Promise<{ evaluations: AuthzenAnswer[] } | AuthzenAnswer> {
  if (!body.evaluations || body.evaluations.length === 0) {
    // Without an evaluations array the request is a single evaluation (AuthZEN §7: backwards compatible).
    const single = evaluationRequest.safeParse(body);
    if (!single.success) throw new MandateError('AUTHZEN_REQUEST_INVALID', 'an evaluations request needs evaluations, or subject, action and resource', 400);
    return evaluate(pdp, single.data, explain, log);
  }
  const semantic = body.options?.evaluations_semantic ?? 'execute_all';
  const items: Evaluation[] = body.evaluations.map((item, i) => {
    const merged = { subject: item.subject ?? body.subject, action: item.action ?? body.action, resource: item.resource ?? body.resource, context: item.context ?? body.context };
    const parsed = evaluationRequest.safeParse(merged);
    if (!parsed.success) throw new MandateError('AUTHZEN_REQUEST_INVALID', `evaluations[${i}] lacks a subject, action or resource (none given there or at the top level)`, 400, { index: i });
    return parsed.data;
  });
  // Every item is checked before the first is decided: a refused batch leaves no decisions behind.
  for (const item of items) toCedar(item);
  const answers: AuthzenAnswer[] = [];
  for (const item of items) {
    const result = await evaluate(pdp, item, explain, log);
    answers.push(result);
    if (semantic === 'deny_on_first_deny' && !result.decision) break;
    if (semantic === 'permit_on_first_permit' && result.decision) break;
  }
  return { evaluations: answers };
}

const PAGE_SIZE = 100;

function pageOf<T>(all: T[], token: string | undefined): { results: T[]; page: { next_token: string } } {
  const start = token ? Number.parseInt(token, 10) : 0;
  if (!Number.isInteger(start) || start < 0 || String(start) !== (token ?? '0')) throw new MandateError('AUTHZEN_PAGE_INVALID', 'page.next_token is not one this PDP issued', 400);
  const results = all.slice(start, start + PAGE_SIZE);
  return { results, page: { next_token: start + PAGE_SIZE < all.length ? String(start + PAGE_SIZE) : '' } };
}

/**
 * Search: every known entity of the asked type (or every action the policies name) is a candidate; the
 * ones the policies permit are returned. Candidates are decided without logging each one; the search
 * itself is logged once.
 */
export function search(pdp: PdpService, kind: 'subject' | 'resource' | 'action', body: Record<string, unknown>): { results: Record<string, unknown>[]; page: { next_token: string } } {
  const b = body as { subject: { type: string; id?: string }; action?: { name: string }; resource: { type: string; id?: string }; context?: Record<string, unknown>; page?: { next_token?: string } };
  const permitted: Record<string, unknown>[] = [];
  const decide = (principal: { type: string; id: string }, actionName: string, resourceUid: { type: string; id: string }) =>
    pdp.decide({ principal, action: { type: 'Action', id: actionName }, resource: resourceUid, context: b.context ?? {} }).decision === 'allow';
  if (kind === 'action') {
    for (const name of candidateActions(pdp)) if (decide(b.subject as { type: string; id: string }, name, b.resource as { type: string; id: string })) permitted.push({ name });
  } else {
    const type = kind === 'subject' ? b.subject.type : b.resource.type;
    const ids = [...pdp.entities].filter((e) => e.uid.type === type).map((e) => e.uid.id).sort();
    for (const id of ids) {
      const ok = kind === 'subject' ? decide({ type, id }, b.action!.name, b.resource as { type: string; id: string }) : decide(b.subject as { type: string; id: string }, b.action!.name, { type, id });
      if (ok) permitted.push({ type, id });
    }
  }
  return pageOf(permitted, b.page?.next_token || undefined);
}

/** Actions named by the active policies' scopes, and Action entities. */
function candidateActions(pdp: PdpService): string[] {
  const names = new Set<string>();
  for (const policy of pdp.policySet.policies) {
    const scope = policy.est.action as { op: string; entity?: { type: string; id: string }; entities?: { type: string; id: string }[] };
    for (const uid of [scope.entity, ...(scope.entities ?? [])]) if (uid && uid.type === 'Action') names.add(uid.id);
  }
  for (const entity of pdp.entities) if (entity.uid.type === 'Action') names.add(entity.uid.id);
  return [...names].sort();
}
