import type { Hono } from 'hono';
import { z } from 'zod';
import type { Services } from '../services.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import { pageQuery, readBody, readQuery } from '../validation.ts';
import type { AppEnv } from '../app-env.ts';

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

/** Reads an optional JSON body: the status endpoints accept an empty POST. */
async function optionalBody<S extends z.ZodType>(c: Parameters<typeof readBody>[0], schema: S): Promise<z.infer<S>> {
  if ((c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding')) return schema.parse({});
  return readBody(c, schema);
}

export function registerIdentityRoutes(api: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const { identity } = services;

  docs.add({ method: 'post', path: '/api/v1/humans', tag: 'identity', summary: 'Create a human (joiner)', body: humanCreate, success: { status: 201, description: 'The human' }, errors: ['HUMAN_EXISTS', 'REQUEST_INVALID'] });
  api.post('/humans', async (c) => {
    const body = await readBody(c, humanCreate);
    return c.json(await identity.createHuman(body, c.get('actor')), 201);
  });

  const humanList = z.object({ email: z.string().max(320).optional(), ...pageQuery }).strict();
  docs.add({ method: 'get', path: '/api/v1/humans', tag: 'identity', summary: 'List humans (filter by email)', query: humanList, success: { status: 200, description: '{items, next}' } });
  api.get('/humans', async (c) => {
    const q = readQuery(c, humanList);
    return c.json(await identity.listHumans({ email: q.email, cursor: q.cursor, limit: q.limit }));
  });

  docs.add({ method: 'get', path: '/api/v1/humans/{id}', tag: 'identity', summary: 'Get a human', success: { status: 200, description: 'The human' }, errors: ['HUMAN_NOT_FOUND'] });
  api.get('/humans/:id', async (c) => c.json(await identity.getHuman(c.req.param('id'))));

  const humanPatch = humanCreate.partial().extend({ active: z.boolean().optional() }).strict();
  docs.add({ method: 'patch', path: '/api/v1/humans/{id}', tag: 'identity', summary: 'Update a human (department, manager or group change = mover)', body: humanPatch, success: { status: 200, description: 'The human' } });
  api.patch('/humans/:id', async (c) => {
    const body = await readBody(c, humanPatch);
    return c.json(await identity.updateHuman(c.req.param('id'), body, c.get('actor')));
  });

  docs.add({ method: 'post', path: '/api/v1/humans/{id}/offboard', tag: 'identity', summary: 'Leaver: deactivate, suspend owned agents, open handovers', body: offboardBody, success: { status: 200, description: '{human, suspended, handovers}' }, errors: ['HUMAN_NOT_FOUND', 'HANDOVER_TARGET_INACTIVE'] });
  api.post('/humans/:id/offboard', async (c) => {
    const body = await optionalBody(c, offboardBody);
    return c.json(await identity.offboard(c.req.param('id'), { transferTo: body.transferTo }, c.get('actor')));
  });

  for (const kind of ['agent', 'workload'] as const) {
    const plural = `${kind}s`;
    docs.add({ method: 'post', path: `/api/v1/${plural}`, tag: 'identity', summary: `Register a ${kind} with its human owner`, body: identityCreate, success: { status: 201, description: `The ${kind}` }, errors: ['IDENTITY_OWNER_NOT_FOUND', 'IDENTITY_OWNER_INACTIVE'] });
    api.post(`/${plural}`, async (c) => {
      const body = await readBody(c, identityCreate);
      return c.json(await identity.createIdentity(kind, body, c.get('actor')), 201);
    });

    const listQuery = z.object({ ownerId: id.optional(), status: statusQuery.optional(), tag: z.string().max(100).optional(), ...pageQuery }).strict();
    docs.add({ method: 'get', path: `/api/v1/${plural}`, tag: 'identity', summary: `List ${plural}`, query: listQuery, success: { status: 200, description: '{items, next}' } });
    api.get(`/${plural}`, async (c) => {
      const q = readQuery(c, listQuery);
      return c.json(await identity.listIdentities({ kind, ownerId: q.ownerId, status: q.status, tag: q.tag, cursor: q.cursor, limit: q.limit }));
    });

    docs.add({ method: 'get', path: `/api/v1/${plural}/{id}`, tag: 'identity', summary: `Get a ${kind}`, success: { status: 200, description: `The ${kind}` } });
    api.get(`/${plural}/:id`, async (c) => c.json(await identity.getIdentity(c.req.param('id'), kind)));

    for (const [verb, status] of [['suspend', 'suspended'], ['resume', 'active'], ['decommission', 'decommissioned']] as const) {
      docs.add({ method: 'post', path: `/api/v1/${plural}/{id}/${verb}`, tag: 'identity', summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a ${kind}`, body: statusBody, success: { status: 200, description: `The ${kind}` }, errors: ['IDENTITY_DECOMMISSIONED', 'IDENTITY_OWNER_INACTIVE'] });
      api.post(`/${plural}/:id/${verb}`, async (c) => {
        const body = await optionalBody(c, statusBody);
        await identity.getIdentity(c.req.param('id'), kind);
        return c.json(await identity.setStatus(c.req.param('id'), status, body.reason ?? null, c.get('actor')));
      });
    }
  }

  const findingQuery = z.object({ kind: z.enum(['orphaned', 'inactive', 'handover', 'review']).optional(), status: z.enum(['open', 'resolved']).optional(), subjectId: id.optional(), ...pageQuery }).strict();
  docs.add({ method: 'get', path: '/api/v1/findings', tag: 'identity', summary: 'Orphaned, inactive, handover and review findings', query: findingQuery, success: { status: 200, description: '{items, next}' } });
  api.get('/findings', async (c) => {
    const q = readQuery(c, findingQuery);
    return c.json(await identity.listFindings({ kind: q.kind, status: q.status ?? 'open', subjectId: q.subjectId, cursor: q.cursor, limit: q.limit }));
  });

  docs.add({ method: 'post', path: '/api/v1/findings/detect', tag: 'identity', summary: 'Run orphan and inactivity detection now', success: { status: 200, description: '{opened, resolved}' } });
  api.post('/findings/detect', async (c) => c.json(await identity.detect(c.get('actor'))));

  docs.add({ method: 'post', path: '/api/v1/handovers/{findingId}/resolve', tag: 'identity', summary: 'Resolve a handover: transfer to a new owner or decommission', body: handoverBody, success: { status: 200, description: '{finding, identity}' }, errors: ['HANDOVER_TARGET_REQUIRED', 'HANDOVER_CLOSED'] });
  api.post('/handovers/:findingId/resolve', async (c) => {
    const body = await readBody(c, handoverBody);
    return c.json(await identity.resolveHandover(c.req.param('findingId'), body, c.get('actor')));
  });
}
