import { z } from 'zod';
import { MandateError } from '../../core/errors.ts';
import { APPROVAL_WEBHOOK_SECRET, gatewaySettingsPatch, LABEL, POLICY_TEMPLATES, SERVER_NAME } from '../../gateway/index.ts';
import { defineRoute, itemsResponse, pageResponse, removedResponse, type Router } from '../define-route.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { pageQuery } from '../validation.ts';

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
export function registerGatewayRoutes(admin: Router, docs: OpenApiRegistry, services: Services): void {
  const { gateway, vault } = services;
  const tag = 'gateway';

  // ---- upstream registry ----
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/mcp/servers',
      tag,
      summary: 'Register an upstream MCP server ({name, url} for Streamable HTTP or {name, command, args, env} for stdio) and discover its tools',
      body: serverCreate,
      response: { status: 201, description: '{server, tools}' },
      errors: ['MCP_SERVER_EXISTS', 'MCP_SERVER_URL_INVALID'],
      permission: 'mcp.servers.create',
    },
    async (c, { body }) => c.json(await gateway.registry.create(body, c.get('actor')), 201),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/servers', tag, summary: 'List upstream MCP servers (credentials are never returned)', response: itemsResponse, errors: [], permission: 'mcp.servers.list' }, (c) =>
    c.json({ items: gateway.registry.servers() }),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/servers/{name}', tag, summary: 'An upstream and its tools', response: { status: 200, description: '{server, tools}' }, errors: ['MCP_SERVER_NOT_FOUND'], permission: 'mcp.servers.read' }, async (c, { path }) => {
    const server = await gateway.registry.get(path('name'));
    return c.json({ server, tools: gateway.registry.tools(server.name) });
  });
  defineRoute(
    admin,
    docs,
    { method: 'patch', path: '/api/v1/mcp/servers/{name}', tag, summary: "Change an upstream's labels (for its resources and prompts) or settings (requiredScopes)", body: serverPatch, response: { status: 200, description: 'The server' }, errors: ['MCP_SERVER_NOT_FOUND'], permission: 'mcp.servers.update' },
    async (c, { body, path }) => c.json(await gateway.registry.update(path('name'), body, c.get('actor'))),
  );
  defineRoute(
    admin,
    docs,
    { method: 'delete', path: '/api/v1/mcp/servers/{name}', tag, summary: 'Remove an upstream (its credential is deleted from the vault)', response: removedResponse, errors: ['MCP_SERVER_NOT_FOUND'], permission: 'mcp.servers.delete' },
    async (c, { path }) => {
      await gateway.registry.remove(path('name'), c.get('actor'));
      return c.body(null, 204);
    },
  );
  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/mcp/servers/{name}/discover', tag, summary: "Discover the upstream's tools again (labels of known tools are kept)", response: { status: 200, description: '{items: tools}' }, errors: ['MCP_SERVER_NOT_FOUND', 'GATEWAY_DISCOVERY_FAILED'], permission: 'mcp.servers.discover' },
    async (c, { path }) => c.json({ items: await gateway.registry.discover(path('name'), c.get('actor')) }),
  );
  defineRoute(
    admin,
    docs,
    {
      method: 'put',
      path: '/api/v1/mcp/servers/{name}/credential',
      tag,
      summary: 'Set (or with null remove) the credential the gateway injects upstream; stored in the vault, never returned',
      body: credentialBody,
      response: { status: 200, description: 'The server (credential: {kind, configured})' },
      errors: ['MCP_SERVER_NOT_FOUND'],
      permission: 'mcp.servers.credential.set',
    },
    async (c, { body, path }) => c.json(await gateway.registry.setCredential(path('name'), body.credential, c.get('actor'))),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/servers/{name}/tools', tag, summary: 'Discovered tools with their labels', response: itemsResponse, errors: ['MCP_SERVER_NOT_FOUND'], permission: 'mcp.tools.list' }, async (c, { path }) => {
    const server = await gateway.registry.get(path('name'));
    return c.json({ items: gateway.registry.tools(server.name) });
  });
  defineRoute(
    admin,
    docs,
    {
      method: 'patch',
      path: '/api/v1/mcp/servers/{name}/tools/{tool}',
      tag,
      summary: 'Label a tool (private_data, untrusted_content, external_sink, destructive, or your own) and set its settings',
      body: toolPatch,
      response: { status: 200, description: 'The tool' },
      errors: ['MCP_SERVER_NOT_FOUND', 'MCP_TOOL_NOT_FOUND', 'MCP_LABEL_INVALID'],
      permission: 'mcp.tools.update',
    },
    async (c, { body, path }) => c.json(await gateway.registry.setToolLabels(path('name'), path('tool'), body, c.get('actor'))),
  );

  // ---- policies ----
  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/mcp/policy-templates', tag, summary: 'Shipped Cedar policy templates for the gateway (toxic flows, approvals)', response: { status: 200, description: '{items: [{id, description, cedar}]}' }, errors: [], permission: 'mcp.policy-templates.list' },
    (c) => c.json({ items: POLICY_TEMPLATES }),
  );

  // ---- approvals ----
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/approvals', tag, summary: 'Approval requests of gated calls', query: approvalList, response: pageResponse, errors: [], permission: 'mcp.approvals.list' }, async (c, { query }) =>
    c.json(await gateway.approvals.list(query)),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/approvals/{id}', tag, summary: 'One approval request', response: { status: 200, description: 'The approval' }, errors: ['APPROVAL_NOT_FOUND'], permission: 'mcp.approvals.read' }, async (c, { path }) =>
    c.json(await gateway.approvals.get(path('id'))),
  );
  for (const verdict of ['approve', 'deny'] as const) {
    defineRoute(
      admin,
      docs,
      {
        method: 'post',
        path: `/api/v1/mcp/approvals/{id}/${verdict}`,
        tag,
        summary: `${verdict === 'approve' ? 'Approve' : 'Deny'} a waiting call (the owner, the approver group, or an admin)`,
        body: decisionBody,
        bodyOptional: true,
        response: { status: 200, description: 'The approval' },
        errors: ['APPROVAL_NOT_FOUND', 'APPROVAL_CLOSED', 'APPROVAL_FORBIDDEN'],
        // One permission for both verdicts: whoever may decide a call may decide it either way.
        permission: 'mcp.approvals.decide',
      },
      async (c, { body, path }) => c.json(await gateway.approvals.decide(path('id'), verdict, c.get('actor'), body.reason ?? null)),
    );
  }

  // ---- kill switch, limits, settings ----
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/mcp/kill',
      tag,
      summary: "Kill switch: suspend an agent, an owner's agents, agents with a tag or model, or everything; sessions close and calls stop on every replica",
      body: killBody,
      response: { status: 200, description: '{suspended: ids}' },
      errors: ['KILL_SELECTOR_INVALID', 'IDENTITY_NOT_FOUND'],
      permission: 'mcp.kill',
    },
    async (c, { body }) => {
      const { reason, ...selector } = body;
      return c.json(await gateway.killSwitch.kill(selector as Parameters<typeof gateway.killSwitch.kill>[0], reason ?? 'kill switch', c.get('actor')));
    },
  );
  defineRoute(
    admin,
    docs,
    { method: 'put', path: '/api/v1/mcp/limits/{identityId}', tag, summary: "Set an agent's call rate and concurrent-session limits (null = the defaults)", body: limitsBody, response: { status: 200, description: 'The limits' }, errors: ['IDENTITY_NOT_FOUND'], permission: 'mcp.limits.set' },
    async (c, { body, path }) => c.json(await gateway.limits.set(path('identityId'), body, c.get('actor'))),
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/limits/{identityId}', tag, summary: "An agent's effective limits", response: { status: 200, description: '{own, effective}' }, errors: [], permission: 'mcp.limits.read' }, (c, { path }) => {
    const id = path('identityId');
    return c.json({ own: gateway.limits.own(id) ?? null, effective: gateway.limits.effective(id, gateway.settings.current) });
  });
  defineRoute(
    admin,
    docs,
    { method: 'get', path: '/api/v1/mcp/settings', tag, summary: 'Gateway settings (approval timeout and webhook, redaction paths, default limits, allowed hosts/origins)', response: { status: 200, description: 'The settings' }, errors: [], permission: 'mcp.settings.read' },
    async (c) => c.json({ ...gateway.settings.current, approvalWebhookSecret: (await vault.has(APPROVAL_WEBHOOK_SECRET)) ? { configured: true } : null }),
  );
  defineRoute(
    admin,
    docs,
    { method: 'patch', path: '/api/v1/mcp/settings', tag, summary: 'Change gateway settings (approvalWebhookSecret goes to the vault and is never returned)', body: settingsBody, response: { status: 200, description: 'The settings' }, errors: ['GATEWAY_WEBHOOK_INSECURE'], permission: 'mcp.settings.update' },
    async (c, { body }) => {
      const { approvalWebhookSecret, ...patch } = body;
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
    },
  );
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/mcp/sessions', tag, summary: 'Open gateway sessions on this replica', response: itemsResponse, errors: [], permission: 'mcp.sessions.list' }, (c) =>
    c.json({ items: gateway.sessions.all().map((s) => ({ id: s.id, server: s.server, agentId: s.caller.identityId, userId: s.caller.userId, labels: [...s.labels], calls: s.calls, createdAt: new Date(s.createdAt).toISOString(), lastSeen: new Date(s.lastSeen).toISOString() })) }),
  );

  // ---- vault ----
  defineRoute(admin, docs, { method: 'get', path: '/api/v1/vault/secrets', tag: 'vault', summary: 'Secret names and metadata (values are never returned)', response: itemsResponse, errors: [], permission: 'vault.secrets.list' }, async (c) =>
    c.json({ items: await vault.list() }),
  );
  defineRoute(
    admin,
    docs,
    { method: 'post', path: '/api/v1/vault/rotate', tag: 'vault', summary: 'Rotate the data key: every secret is re-sealed under a fresh key', response: { status: 200, description: '{dataKeyId, resealed}' }, errors: [], permission: 'vault.rotate' },
    async (c) => c.json(await vault.rotateDataKey(c.get('actor'))),
  );
  defineRoute(
    admin,
    docs,
    {
      method: 'post',
      path: '/api/v1/vault/rewrap',
      tag: 'vault',
      summary: 'Master-key rotation: re-seal every data key with a new master key (configure it before the next start)',
      body: rewrapBody,
      response: { status: 200, description: '{dataKeys}' },
      errors: ['VAULT_MASTER_KEY_INVALID'],
      permission: 'vault.rewrap',
    },
    async (c, { body }) => {
      const key = Buffer.from(body.newMasterKey, 'base64');
      if (key.length !== 32) throw new MandateError('VAULT_MASTER_KEY_INVALID', 'newMasterKey must be 32 bytes, base64', 400);
      return c.json(await vault.rewrapMasterKey(key, c.get('actor')));
    },
  );
}
