import type { Hono } from 'hono';
import { z } from 'zod';
import { MandateError } from '../../core/errors.ts';
import { APPROVAL_WEBHOOK_SECRET, gatewaySettingsPatch, LABEL, POLICY_TEMPLATES, SERVER_NAME } from '../../gateway/index.ts';
import type { AppEnv } from '../app-env.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { pageQuery, readBody, readQuery } from '../validation.ts';

const label = z.string().regex(LABEL, 'labels are lowercase letters, digits and _:.-');
const labels = z.array(label).max(50);
const serverSettings = z.object({ requiredScopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/)).max(20).optional() }).strict();
const secretText = (max: number) => z.string().min(1).max(max);
export const credentialSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('bearer'), token: secretText(8192) }).strict(),
  z.object({ kind: z.literal('header'), name: z.string().regex(/^[A-Za-z0-9-]{1,100}$/), value: secretText(8192) }).strict(),
  z.object({ kind: z.literal('oauth_client_credentials'), tokenUrl: z.url().max(2000), clientId: secretText(500), clientSecret: secretText(2000), scope: z.string().max(1000).optional(), resource: z.url().max(2000).optional() }).strict(),
]);

const common = { name: z.string().regex(SERVER_NAME, 'server names are 1-63 lowercase letters, digits, - and _'), labels: labels.optional(), settings: serverSettings.optional(), credential: credentialSchema.optional() };
export const serverCreate = z.union([
  z.object({ ...common, url: z.url().max(2000) }).strict(),
  z
    .object({
      ...common,
      command: z.string().min(1).max(1000),
      args: z.array(z.string().max(4000)).max(100).optional(),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,100}$/), z.string().max(8192)).optional(),
    })
    .strict(),
]);
const serverPatch = z.object({ labels: labels.optional(), settings: serverSettings.optional() }).strict();
// Cedar has no fractional numbers: settings are strings, booleans or 64-bit-safe integers.
const toolSettingValue = z.union([z.string().max(1000), z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER), z.boolean()]);
export const toolPatch = z.object({ labels: labels.optional(), settings: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/), toolSettingValue).optional() }).strict();
const credentialBody = z.object({ credential: credentialSchema.nullable() }).strict();
const approvalStatus = z.enum(['pending', 'approved', 'denied', 'expired', 'cancelled']);
const approvalList = z.object({ status: approvalStatus.optional(), agentId: z.string().max(64).optional(), ownerId: z.string().max(64).optional(), ...pageQuery }).strict();
const decisionBody = z.object({ reason: z.string().max(1000).optional() }).strict();
export const killBody = z.union([
  z.object({ agentId: z.string().min(1).max(64), reason: z.string().max(1000).optional() }).strict(),
  z.object({ ownerId: z.string().min(1).max(64), reason: z.string().max(1000).optional() }).strict(),
  z.object({ tag: z.string().min(1).max(100), reason: z.string().max(1000).optional() }).strict(),
  z.object({ modelProvider: z.string().min(1).max(100), model: z.string().min(1).max(200).optional(), reason: z.string().max(1000).optional() }).strict(),
  z.object({ all: z.literal(true), reason: z.string().max(1000).optional() }).strict(),
]);
const limitValue = z.number().int().min(1).max(1_000_000).nullable();
const limitsBody = z.object({ callsPerMinute: limitValue, maxSessions: limitValue }).strict();
export const settingsBody = gatewaySettingsPatch.extend({ approvalWebhookSecret: z.string().min(16).max(500).nullable().optional() }).strict();
const rewrapBody = z.object({ newMasterKey: z.string().min(40).max(100) }).strict();

/** Admin API of the MCP gateway and the vault (under /api/v1, admin authentication). */
export function registerGatewayRoutes(api: Hono<AppEnv>, docs: OpenApiRegistry, services: Services): void {
  const { gateway, vault } = services;
  const tag = 'gateway';

  // ---- upstream registry ----
  docs.add({ method: 'post', path: '/api/v1/mcp/servers', tag, summary: 'Register an upstream MCP server ({name, url} for Streamable HTTP or {name, command, args, env} for stdio) and discover its tools', body: serverCreate, success: { status: 201, description: '{server, tools}' }, errors: ['MCP_SERVER_EXISTS', 'MCP_SERVER_URL_INVALID', 'REQUEST_INVALID'] });
  api.post('/mcp/servers', async (c) => {
    const body = await readBody(c, serverCreate);
    return c.json(await gateway.registry.create(body, c.get('actor')), 201);
  });
  docs.add({ method: 'get', path: '/api/v1/mcp/servers', tag, summary: 'List upstream MCP servers (credentials are never returned)', success: { status: 200, description: '{items}' } });
  api.get('/mcp/servers', (c) => c.json({ items: gateway.registry.servers() }));
  docs.add({ method: 'get', path: '/api/v1/mcp/servers/{name}', tag, summary: 'An upstream and its tools', success: { status: 200, description: '{server, tools}' }, errors: ['MCP_SERVER_NOT_FOUND'] });
  api.get('/mcp/servers/:name', async (c) => {
    const server = await gateway.registry.get(c.req.param('name'));
    return c.json({ server, tools: gateway.registry.tools(server.name) });
  });
  docs.add({ method: 'patch', path: '/api/v1/mcp/servers/{name}', tag, summary: 'Change an upstream\'s labels (for its resources and prompts) or settings (requiredScopes)', body: serverPatch, success: { status: 200, description: 'The server' }, errors: ['MCP_SERVER_NOT_FOUND'] });
  api.patch('/mcp/servers/:name', async (c) => c.json(await gateway.registry.update(c.req.param('name'), await readBody(c, serverPatch), c.get('actor'))));
  docs.add({ method: 'delete', path: '/api/v1/mcp/servers/{name}', tag, summary: 'Remove an upstream (its credential is deleted from the vault)', success: { status: 204, description: 'Removed' }, errors: ['MCP_SERVER_NOT_FOUND'] });
  api.delete('/mcp/servers/:name', async (c) => {
    await gateway.registry.remove(c.req.param('name'), c.get('actor'));
    return c.body(null, 204);
  });
  docs.add({ method: 'post', path: '/api/v1/mcp/servers/{name}/discover', tag, summary: 'Discover the upstream\'s tools again (labels of known tools are kept)', success: { status: 200, description: '{items: tools}' }, errors: ['MCP_SERVER_NOT_FOUND', 'GATEWAY_DISCOVERY_FAILED'] });
  api.post('/mcp/servers/:name/discover', async (c) => c.json({ items: await gateway.registry.discover(c.req.param('name'), c.get('actor')) }));
  docs.add({ method: 'put', path: '/api/v1/mcp/servers/{name}/credential', tag, summary: 'Set (or with null remove) the credential the gateway injects upstream; stored in the vault, never returned', body: credentialBody, success: { status: 200, description: 'The server (credential: {kind, configured})' }, errors: ['MCP_SERVER_NOT_FOUND'] });
  api.put('/mcp/servers/:name/credential', async (c) => {
    const body = await readBody(c, credentialBody);
    return c.json(await gateway.registry.setCredential(c.req.param('name'), body.credential, c.get('actor')));
  });
  docs.add({ method: 'get', path: '/api/v1/mcp/servers/{name}/tools', tag, summary: 'Discovered tools with their labels', success: { status: 200, description: '{items}' }, errors: ['MCP_SERVER_NOT_FOUND'] });
  api.get('/mcp/servers/:name/tools', async (c) => {
    const server = await gateway.registry.get(c.req.param('name'));
    return c.json({ items: gateway.registry.tools(server.name) });
  });
  docs.add({ method: 'patch', path: '/api/v1/mcp/servers/{name}/tools/{tool}', tag, summary: 'Label a tool (private_data, untrusted_content, external_sink, destructive, or your own) and set its settings', body: toolPatch, success: { status: 200, description: 'The tool' }, errors: ['MCP_SERVER_NOT_FOUND', 'MCP_TOOL_NOT_FOUND', 'MCP_LABEL_INVALID'] });
  api.patch('/mcp/servers/:name/tools/:tool', async (c) => {
    const body = await readBody(c, toolPatch);
    return c.json(await gateway.registry.setToolLabels(c.req.param('name'), c.req.param('tool'), body, c.get('actor')));
  });

  // ---- policies ----
  docs.add({ method: 'get', path: '/api/v1/mcp/policy-templates', tag, summary: 'Shipped Cedar policy templates for the gateway (toxic flows, approvals)', success: { status: 200, description: '{items: [{id, description, cedar}]}' } });
  api.get('/mcp/policy-templates', (c) => c.json({ items: POLICY_TEMPLATES }));

  // ---- approvals ----
  docs.add({ method: 'get', path: '/api/v1/mcp/approvals', tag, summary: 'Approval requests of gated calls', query: approvalList, success: { status: 200, description: '{items, next}' } });
  api.get('/mcp/approvals', async (c) => c.json(await gateway.approvals.list(readQuery(c, approvalList))));
  docs.add({ method: 'get', path: '/api/v1/mcp/approvals/{id}', tag, summary: 'One approval request', success: { status: 200, description: 'The approval' }, errors: ['APPROVAL_NOT_FOUND'] });
  api.get('/mcp/approvals/:id', async (c) => c.json(await gateway.approvals.get(c.req.param('id'))));
  for (const verdict of ['approve', 'deny'] as const) {
    docs.add({ method: 'post', path: `/api/v1/mcp/approvals/{id}/${verdict}`, tag, summary: `${verdict === 'approve' ? 'Approve' : 'Deny'} a waiting call (the owner, the approver group, or an admin)`, body: decisionBody, success: { status: 200, description: 'The approval' }, errors: ['APPROVAL_NOT_FOUND', 'APPROVAL_CLOSED', 'APPROVAL_FORBIDDEN'] });
    api.post(`/mcp/approvals/:id/${verdict}`, async (c) => {
      const body = (c.req.header('content-length') ?? '0') === '0' && !c.req.header('transfer-encoding') ? {} : await readBody(c, decisionBody);
      return c.json(await gateway.approvals.decide(c.req.param('id'), verdict, c.get('actor'), body.reason ?? null));
    });
  }

  // ---- kill switch, limits, settings ----
  docs.add({ method: 'post', path: '/api/v1/mcp/kill', tag, summary: 'Kill switch: suspend an agent, an owner\'s agents, agents with a tag or model, or everything; sessions close and calls stop on every replica', body: killBody, success: { status: 200, description: '{suspended: ids}' }, errors: ['KILL_SELECTOR_INVALID', 'IDENTITY_NOT_FOUND'] });
  api.post('/mcp/kill', async (c) => {
    const body = await readBody(c, killBody);
    const { reason, ...selector } = body;
    return c.json(await gateway.killSwitch.kill(selector as Parameters<typeof gateway.killSwitch.kill>[0], reason ?? 'kill switch', c.get('actor')));
  });
  docs.add({ method: 'put', path: '/api/v1/mcp/limits/{identityId}', tag, summary: 'Set an agent\'s call rate and concurrent-session limits (null = the defaults)', body: limitsBody, success: { status: 200, description: 'The limits' }, errors: ['IDENTITY_NOT_FOUND'] });
  api.put('/mcp/limits/:id', async (c) => c.json(await gateway.limits.set(c.req.param('id'), await readBody(c, limitsBody), c.get('actor'))));
  docs.add({ method: 'get', path: '/api/v1/mcp/limits/{identityId}', tag, summary: 'An agent\'s effective limits', success: { status: 200, description: '{own, effective}' } });
  api.get('/mcp/limits/:id', (c) => {
    const id = c.req.param('id');
    return c.json({ own: gateway.limits.own(id) ?? null, effective: gateway.limits.effective(id, gateway.settings.current) });
  });
  docs.add({ method: 'get', path: '/api/v1/mcp/settings', tag, summary: 'Gateway settings (approval timeout and webhook, redaction paths, default limits, allowed hosts/origins)', success: { status: 200, description: 'The settings' } });
  api.get('/mcp/settings', async (c) => c.json({ ...gateway.settings.current, approvalWebhookSecret: (await vault.has(APPROVAL_WEBHOOK_SECRET)) ? { configured: true } : null }));
  docs.add({ method: 'patch', path: '/api/v1/mcp/settings', tag, summary: 'Change gateway settings (approvalWebhookSecret goes to the vault and is never returned)', body: settingsBody, success: { status: 200, description: 'The settings' } });
  api.patch('/mcp/settings', async (c) => {
    const { approvalWebhookSecret, ...patch } = await readBody(c, settingsBody);
    // Approval requests carry arguments: in production they only travel over TLS.
    if (services.config.mode === 'production' && patch.approvalWebhookUrl && !patch.approvalWebhookUrl.startsWith('https://')) {
      throw new MandateError('GATEWAY_WEBHOOK_INSECURE', 'approvalWebhookUrl must be https:// in production', 400);
    }
    // Credentials in the URL would be returned by GET /mcp/settings and recorded in the audit chain: use the signing secret.
    if (patch.approvalWebhookUrl) {
      const url = new URL(patch.approvalWebhookUrl);
      if (url.username || url.password) throw new MandateError('GATEWAY_WEBHOOK_INSECURE', 'approvalWebhookUrl must not carry credentials (set approvalWebhookSecret instead)', 400);
    }
    if (approvalWebhookSecret !== undefined) {
      if (approvalWebhookSecret === null) await vault.remove(APPROVAL_WEBHOOK_SECRET, c.get('actor'));
      else await vault.put(APPROVAL_WEBHOOK_SECRET, approvalWebhookSecret, c.get('actor'));
    }
    const settings = await gateway.settings.update(patch, c.get('actor'));
    return c.json({ ...settings, approvalWebhookSecret: (await vault.has(APPROVAL_WEBHOOK_SECRET)) ? { configured: true } : null });
  });
  docs.add({ method: 'get', path: '/api/v1/mcp/sessions', tag, summary: 'Open gateway sessions on this replica', success: { status: 200, description: '{items}' } });
  api.get('/mcp/sessions', (c) =>
    c.json({ items: gateway.sessions.all().map((s) => ({ id: s.id, server: s.server, agentId: s.caller.identityId, userId: s.caller.userId, labels: [...s.labels], calls: s.calls, createdAt: new Date(s.createdAt).toISOString(), lastSeen: new Date(s.lastSeen).toISOString() })) }),
  );

  // ---- vault ----
  docs.add({ method: 'get', path: '/api/v1/vault/secrets', tag: 'vault', summary: 'Secret names and metadata (values are never returned)', success: { status: 200, description: '{items}' } });
  api.get('/vault/secrets', async (c) => c.json({ items: await vault.list() }));
  docs.add({ method: 'post', path: '/api/v1/vault/rotate', tag: 'vault', summary: 'Rotate the data key: every secret is re-sealed under a fresh key', success: { status: 200, description: '{dataKeyId, resealed}' } });
  api.post('/vault/rotate', async (c) => c.json(await vault.rotateDataKey(c.get('actor'))));
  docs.add({ method: 'post', path: '/api/v1/vault/rewrap', tag: 'vault', summary: 'Master-key rotation: re-seal every data key with a new master key (configure it before the next start)', body: rewrapBody, success: { status: 200, description: '{dataKeys}' }, errors: ['VAULT_MASTER_KEY_INVALID'] });
  api.post('/vault/rewrap', async (c) => {
    const body = await readBody(c, rewrapBody);
    const key = Buffer.from(body.newMasterKey, 'base64');
    if (key.length !== 32) throw new MandateError('VAULT_MASTER_KEY_INVALID', 'newMasterKey must be 32 bytes, base64', 400);
    return c.json(await vault.rewrapMasterKey(key, c.get('actor')));
  });
}
