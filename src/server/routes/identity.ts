import { z } from 'zod';
import type { Services } from '../services.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import { defineRoute, pageResponse, type Router } from '../define-route.ts';
import { pageQuery } from '../validation.ts';

const text = (max: number) => z.string().trim().min(1).max(max);
const id = z.string().min(1).max(64);
const optionalText = (max: number) => z.string().max(max).nullable().optional();

export const humanCreate = z
  .object({
    email: z.email().max(320),
    displayName: text(200),
    userName: text(320).optional(),
    department: optionalText(200),
    managerId: id.nullable().optional(),
    groups: z.array(id).max(200).optional(),
    attributes: z.record(z.string().max(100), z.unknown()).optional(),
  })
  .strict();

const offboardBody = z.object({ transferTo: id.optional() }).strict();

export const identityCreate = z
  .object({
    name: text(200),
    ownerId: id,
    sponsorId: id.nullable().optional(),
    purpose: optionalText(2000),
    environment: optionalText(100),
    modelProvider: optionalText(100),
    model: optionalText(200),
    tags: z.array(z.string().trim().min(1).max(100)).max(50).optional(),
  })
  .strict();

const statusBody = z.object({ reason: z.string().max(1000).optional() }).strict();
const statusQuery = z.enum(['active', 'suspended', 'decommissioned']);
const handoverBody = z.discriminatedUnion('action', [
  z.object({ action: z.literal('transfer'), newOwnerId: id.optional() }).strict(),
  z.object({ action: z.literal('decommission') }).strict(),
]);

export function registerIdentityRoutes(admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { identity } = services;
  const tag = 'identity';

  defineRoute(admin, docs, { method: 'post', path: '/api/v1/humans', tag, summary: 'Create a human (joiner)', body: humanCreate, response: { status: 201, description: 'The human' }, errors: ['HUMAN_EXISTS'], permission: 'humans.create' }, async (c, { body }) =>
    c.json(await identity.createHuman(body, c.get('actor')), 201),
  );

  const humanList = z.object({ email: z.string().max(320).optional(), ...pageQuery }).strict();
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/humans', tag, summary: 'List humans (filter by email)', query: humanList, response: pageResponse, errors: [], permission: 'humans.list' }, async (c, { query: q }) =>
    c.json(await identity.listHumans({ email: q.email, cursor: q.cursor, limit: q.limit })),
  );

  defineRoute(admin, docs, { method: 'get', path: '/api/v1/humans/{id}', tag, summary: 'Get a human', response: { status: 200, description: 'The human' }, errors: ['HUMAN_NOT_FOUND'], permission: 'humans.read' }, async (c, { path }) =>
    c.json(await identity.getHuman(path('id'))),
  );

  const humanPatch = humanCreate.partial().extend({ active: z.boolean().optional() }).strict();
  defineRoute(
    admin,
    docs,
    { method: 'patch', path: '/api/v1/humans/{id}', tag, summary: 'Update a human (department, manager or group change = mover)', body: humanPatch, response: { status: 200, description: 'The human' }, errors: ['HUMAN_NOT_FOUND', 'HUMAN_EXISTS'], permission: 'humans.update' },
    async (c, { body, path }) => c.json(await identity.updateHuman(path('id'), body, c.get('actor'))),
  );

  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/humans/{id}/offboard', tag, summary: 'Leaver: deactivate, suspend owned agents, open handovers', body: offboardBody, bodyOptional: true, response: { status: 200, description: '{human, suspended, handovers}' }, errors: ['HUMAN_NOT_FOUND', 'HANDOVER_TARGET_INACTIVE'], permission: 'humans.offboard' },
    async (c, { body, path }) => c.json(await identity.offboard(path('id'), { transferTo: body.transferTo }, c.get('actor'))),
  );

  for (const kind of ['agent', 'workload'] as const) {
    const plural = `${kind}s` as const;
    defineRoute(
      admin,
      docs,
      { method: 'post', path: `/api/v1/${plural}`, tag, summary: `Register a ${kind} with its human owner`, body: identityCreate, response: { status: 201, description: `The ${kind}` }, errors: ['IDENTITY_OWNER_NOT_FOUND', 'IDENTITY_OWNER_INACTIVE'], permission: `${plural}.create` },
      async (c, { body }) => c.json(await identity.createIdentity(kind, body, c.get('actor')), 201),
    );

    const listQuery = z.object({ ownerId: id.optional(), status: statusQuery.optional(), tag: z.string().max(100).optional(), ...pageQuery }).strict();
    defineRoute(admin, docs, { method: 'get', path: `/api/v1/${plural}`, tag, summary: `List ${plural}`, query: listQuery, response: pageResponse, errors: [], permission: `${plural}.list` }, async (c, { query: q }) =>
      c.json(await identity.listIdentities({ kind, ownerId: q.ownerId, status: q.status, tag: q.tag, cursor: q.cursor, limit: q.limit })),
    );

    defineRoute(admin, docs, { method: 'get', path: `/api/v1/${plural}/{id}`, tag, summary: `Get a ${kind}`, response: { status: 200, description: `The ${kind}` }, errors: ['IDENTITY_NOT_FOUND'], permission: `${plural}.read` }, async (c, { path }) =>
      c.json(await identity.getIdentity(path('id'), kind)),
    );

    for (const [verb, status] of [['suspend', 'suspended'], ['resume', 'active'], ['decommission', 'decommissioned']] as const) {
      defineRoute(
        admin,
        docs,
        {
          method: 'post',
          path: `/api/v1/${plural}/{id}/${verb}`,
          tag,
          summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a ${kind}`,
          body: statusBody,
          bodyOptional: true,
          response: { status: 200, description: `The ${kind}` },
          errors: ['IDENTITY_NOT_FOUND', 'IDENTITY_DECOMMISSIONED', 'IDENTITY_OWNER_INACTIVE'],
          permission: `${plural}.${verb}`,
        },
        async (c, { body, path }) => {
          await identity.getIdentity(path('id'), kind);
          return c.json(await identity.setStatus(path('id'), status, body.reason ?? null, c.get('actor')));
        },
      );
    }
  }

  const findingQuery = z.object({ kind: z.enum(['orphaned', 'inactive', 'handover', 'review']).optional(), status: z.enum(['open', 'resolved']).optional(), subjectId: id.optional(), ...pageQuery }).strict();
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/findings', tag, summary: 'Orphaned, inactive, handover and review findings', query: findingQuery, response: pageResponse, errors: [], permission: 'findings.list' }, async (c, { query: q }) =>
    c.json(await identity.listFindings({ kind: q.kind, status: q.status ?? 'open', subjectId: q.subjectId, cursor: q.cursor, limit: q.limit })),
  );

  defineRoute(admin, docs, { method: 'post', path: '/api/v1/findings/detect', tag, summary: 'Run orphan and inactivity detection now', response: { status: 200, description: '{opened, resolved}' }, errors: [], permission: 'findings.detect' }, async (c) =>
    c.json(await identity.detect(c.get('actor'))),
  );

  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/handovers/{findingId}/resolve', tag, summary: 'Resolve a handover: transfer to a new owner or decommission', body: handoverBody, response: { status: 200, description: '{finding, identity}' }, errors: ['HANDOVER_TARGET_REQUIRED', 'HANDOVER_CLOSED'], permission: 'handovers.resolve' },
    async (c, { body, path }) => c.json(await identity.resolveHandover(path('findingId'), body, c.get('actor'))),
  );
}
