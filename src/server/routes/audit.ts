import type { Hono } from 'hono';
import { z } from 'zod';
import { verifyStoredChain, CHECKPOINT_KEY_PURPOSE } from '../../audit/index.ts';
import { publicKeys } from '../../keys/index.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { readBody, readQuery } from '../validation.ts';

export function registerAuditRoutes(api: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const listQuery = z.object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();
  docs.add({ method: 'get', path: '/api/v1/audit', tag: 'audit', summary: 'Read the audit chain in sequence order', query: listQuery, success: { status: 200, description: '{items, next}: pass next as after' } });
  api.get('/audit', async (c) => {
    const q = readQuery(c, listQuery);
    return c.json(await services.audit.list(q.after, q.limit));
  });

  const sinkBody = z
    .object({ name: z.string().trim().min(1).max(100), url: z.url().max(2000), format: z.enum(['jsonl', 'ocsf']).optional(), batchSize: z.number().int().min(1).max(5000).optional() })
    .strict();
  docs.add({ method: 'post', path: '/api/v1/audit/sinks', tag: 'audit', summary: 'Stream the audit chain to a webhook (NDJSON, HMAC-signed); the secret is shown once', body: sinkBody, success: { status: 201, description: 'The sink with its signing secret' }, errors: ['AUDIT_SINK_EXISTS', 'AUDIT_SINK_URL_INSECURE'] });
  api.post('/audit/sinks', async (c) => c.json(await services.auditStreams.create(await readBody(c, sinkBody), c.get('actor')), 201));
  docs.add({ method: 'get', path: '/api/v1/audit/sinks', tag: 'audit', summary: 'Audit sinks with their delivery cursor, lag and last error', success: { status: 200, description: '{items}' } });
  api.get('/audit/sinks', async (c) => c.json({ items: await services.auditStreams.list() }));
  docs.add({ method: 'delete', path: '/api/v1/audit/sinks/{id}', tag: 'audit', summary: 'Stop streaming to a sink', success: { status: 204, description: 'Removed' } });
  api.delete('/audit/sinks/:id', async (c) => {
    await services.auditStreams.remove(c.req.param('id'), c.get('actor'));
    return c.body(null, 204);
  });

  docs.add({ method: 'get', path: '/api/v1/audit/verify', tag: 'audit', summary: 'Verify the whole chain and its signed checkpoints', success: { status: 200, description: '{ok, events, checkpoints, firstBadSeq?, reason?}' } });
  api.get('/audit/verify', async (c) => {
    await services.audit.flush();
    return c.json(await verifyStoredChain(services.store));
  });

  docs.add({ method: 'get', path: '/api/v1/audit/checkpoints', tag: 'audit', summary: 'Signed checkpoints and the public keys that verify them', success: { status: 200, description: '{checkpoints, keys}' } });
  api.get('/audit/checkpoints', async (c) => {
    const rows = await services.store.db.selectFrom('audit_checkpoints').selectAll().orderBy('seq').execute();
    const keys = await publicKeys(services.store, CHECKPOINT_KEY_PURPOSE);
    return c.json({
      checkpoints: rows.map((r) => ({ seq: Number(r.seq), hash: r.hash, signature: r.signature, keyId: r.key_id, ts: r.ts })),
      keys: [...keys.values()],
    });
  });
}
