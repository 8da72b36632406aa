import { z } from 'zod';
import { verifyStoredChain, CHECKPOINT_KEY_PURPOSE } from '../../audit/index.ts';
import { publicKeys } from '../../keys/index.ts';
import { defineRoute, itemsResponse, removedResponse, type Router } from '../define-route.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';

export function registerAuditRoutes(admin: Router, docs: OpenApiRegistry, services: Services): void {
  const tag = 'audit';
  const listQuery = z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();
  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/audit', tag, summary: 'Read the audit chain in sequence order', query: listQuery, response: { status: 200, description: '{items, next}: pass next as after' }, errors: [], permission: 'audit.read' },
    async (c, { query: q }) => c.json(await services.audit.list(q.after, q.limit)),
  );

  const sinkBody = z
    .object({ name: z.string().trim().min(1).max(100), url: z.url().max(2000), format: z.enum(['jsonl', 'ocsf']).optional(), batchSize: z.number().int().min(1).max(5000).optional() })
    .strict();
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/audit/sinks',
      tag,
      summary: 'Stream the audit chain to a webhook (NDJSON, HMAC-signed); the secret is shown once',
      body: sinkBody,
      response: { status: 201, description: 'The sink with its signing secret' },
      errors: ['AUDIT_SINK_EXISTS', 'AUDIT_SINK_URL_INSECURE'],
      permission: 'audit.sinks.create',
    },
    async (c, { body }) => c.json(await services.auditStreams.create(body, c.get('actor')), 201),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/audit/sinks', tag, summary: 'Audit sinks with their delivery cursor, lag and last error', response: itemsResponse, errors: [], permission: 'audit.sinks.list' }, async (c) =>
    c.json({ items: await services.auditStreams.list() }),
  );
  defineRoute(admin, docs, { method: 'delete', path: '/api/v1/audit/sinks/{id}', tag, summary: 'Stop streaming to a sink', response: removedResponse, errors: [], permission: 'audit.sinks.delete' }, async (c, { path }) => {
    await services.auditStreams.remove(path('id'), c.get('actor'));
    return c.body(null, 204);
  });

  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/audit/verify', tag, summary: 'Verify the whole chain and its signed checkpoints', response: { status: 200, description: '{ok, events, checkpoints, firstBadSeq?, reason?}' }, errors: [], permission: 'audit.verify' },
    async (c) => {
      await services.audit.flush();
      return c.json(await verifyStoredChain(services.store));
    },
  );

  const checkpoints = z.object({
    checkpoints: z.array(z.object({ seq: z.number(), hash: z.string(), signature: z.string(), keyId: z.string(), ts: z.string() })),
    keys: z.array(z.object({}).loose()),
  });
  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/audit/checkpoints', tag, summary: 'Signed checkpoints and the public keys that verify them', response: { status: 200, description: '{checkpoints, keys}', schema: checkpoints }, errors: [], permission: 'audit.checkpoints.read' },
    async (c) => {
      const rows = await services.store.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
      const keys = await publicKeys(services.store, CHECKPOINT_KEY_PURPOSE);
      return c.json({
        checkpoints: rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, signature: r.signature, keyId: r.key_id, ts: r.ts })),
        keys: [...keys.values()],
      });
    },
  );
}
