import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { AuditLog } from '../audit/index.ts';
import { IdentityService } from '../identity/index.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { Vault } from '../vault/index.ts';
import { ApprovalService } from './approvals.ts';
import { CredentialBroker } from './credentials.ts';
import { LimitService } from './limits.ts';
import { UpstreamRegistry } from './registry.ts';
import { SettingsStore } from './settings.ts';

const DEMO_STDIO = fileURLToPath(new URL('./demo-stdio.ts', import.meta.url));

describe.each(BACKENDS)('gateway state in the store (%s)', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  let audit: AuditLog;
  let vault: Vault;
  let identity: IdentityService;
  let owner: string;
  let member: string;
  let stranger: string;
  let group: string;
  let agent: string;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    const master = randomBytes(32);
    audit = new AuditLog(store, new KeyRing(store, master), { checkpointEvery: 1000 });
    await audit.init();
    vault = new Vault(store, audit, master);
    identity = new IdentityService(store, audit, { inactivityDays: 90 });
    owner = (await identity.createHuman({ email: 'o@example.com', displayName: 'O' }, 'admin')).id;
    member = (await identity.createHuman({ email: 'm@example.com', displayName: 'M' }, 'admin')).id;
    stranger = (await identity.createHuman({ email: 's@example.com', displayName: 'S' }, 'admin')).id;
    group = (await identity.createGroup({ displayName: 'approvers', members: [member] }, 'admin')).id;
    agent = (await identity.createIdentity('agent', { name: 'a', ownerId: owner }, 'admin')).id;
  });
  afterAll(async () => close());

  it('registers a stdio upstream, discovers its tools, keeps labels across rediscovery, and removes its vault secrets', async () => {
    const registry = new UpstreamRegistry(store, audit, vault, new CredentialBroker(store, vault));
    const created = await registry.create({ name: 'demo', command: process.execPath, args: [DEMO_STDIO], env: { DEMO_API_KEY: 'k-123456' }, credential: { kind: 'bearer', token: 'unused' } }, 'admin');
    expect(created.server.discoveryError).toBeNull();
    expect(created.server.envNames).toEqual(['DEMO_API_KEY']);
    expect(created.tools.map((t) => t.name)).toContain('crm_lookup');
    await registry.setToolLabels('demo', 'crm_lookup', { labels: ['private_data', 'private_data', 'pii'], settings: { note: 'CRM' } }, 'admin');
    await registry.discover('demo', 'admin');
    expect(registry.tool('demo', 'crm_lookup')).toMatchObject({ labels: ['pii', 'private_data'], settings: { note: 'CRM' }, present: true });
    expect(JSON.stringify(await registry.get('demo'))).not.toContain('k-123456');
    expect(await registry.stdioEnv(registry.server('demo')!)).toEqual({ DEMO_API_KEY: 'k-123456' });
    await expect(registry.create({ name: 'demo', url: 'http://127.0.0.1:1/mcp' }, 'admin')).rejects.toMatchObject({ code: 'MCP_SERVER_EXISTS' });
    await expect(registry.create({ name: 'Bad Name', url: 'http://127.0.0.1:1/mcp' }, 'admin')).rejects.toMatchObject({ code: 'MCP_SERVER_NAME_INVALID' });
    await expect(registry.create({ name: 'creds', url: 'http://user:pw@127.0.0.1:1/mcp' }, 'admin')).rejects.toMatchObject({ code: 'MCP_SERVER_URL_INVALID' });
    await expect(registry.setToolLabels('demo', 'nope', { labels: [] }, 'admin')).rejects.toMatchObject({ code: 'MCP_TOOL_NOT_FOUND' });
    await expect(registry.setToolLabels('demo', 'echo', { labels: ['Not A Label'] }, 'admin')).rejects.toMatchObject({ code: 'MCP_LABEL_INVALID' });
    // Another replica (a second registry on the same store) sees it after load.
    const other = new UpstreamRegistry(store, audit, vault, new CredentialBroker(store, vault));
    await other.load();
    expect(other.tool('demo', 'crm_lookup')?.labels).toEqual(['pii', 'private_data']);
    await registry.remove('demo', 'admin');
    expect(await vault.list()).toEqual([]);
    expect(registry.server('demo')).toBeUndefined();
  });

  it('an unreachable upstream is registered with its discovery error', async () => {
    const registry = new UpstreamRegistry(store, audit, vault, new CredentialBroker(store, vault));
    const created = await registry.create({ name: 'down', url: 'http://127.0.0.1:9/mcp' }, 'admin');
    expect(created.server.discoveryError).toMatch(/discovery failed/);
    expect(created.tools).toEqual([]);
    await registry.remove('down', 'admin');
  });

  it('approvals: only the owner, the approver group or an admin decides; the first decision wins', async () => {
    const approvals = new ApprovalService(store, audit, vault, logger);
    approvals.configure({ webhookUrl: () => null, approverGroup: () => null });
    const input = { agentId: agent, ownerId: owner, userId: null, server: 'demo', action: 'tools/call', target: 'demo/delete', arguments: { id: 1 }, argsDigest: 'd', policies: ['policy0'], sessionId: 's', timeoutSeconds: 60 };
    const pendingId = async () => {
      for (let i = 0; i < 1000; i++) {
        const list = await approvals.list({ status: 'pending', agentId: agent, limit: 10 });
        if (list.items[0]) return list.items[0].id;
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw new Error('no pending approval');
    };

    const first = approvals.request({ ...input, approver: 'owner' }, new AbortController().signal);
    const id1 = await pendingId();
    await expect(approvals.decide(id1, 'approve', `human:${stranger}`, null)).rejects.toMatchObject({ code: 'APPROVAL_FORBIDDEN' });
    await expect(approvals.decide(id1, 'approve', `human:${member}`, null)).rejects.toMatchObject({ code: 'APPROVAL_FORBIDDEN' });
    await expect(approvals.decide(id1, 'approve', 'client:x', null)).rejects.toMatchObject({ code: 'APPROVAL_FORBIDDEN' });
    expect((await approvals.decide(id1, 'approve', `human:${owner}`, 'fine')).status).toBe('approved');
    expect((await first).status).toBe('approved');
    await expect(approvals.decide(id1, 'deny', 'admin', null)).rejects.toMatchObject({ code: 'APPROVAL_CLOSED' });

    const second = approvals.request({ ...input, approver: `group:${group}` }, new AbortController().signal);
    const id2 = await pendingId();
    expect((await approvals.decide(id2, 'deny', `human:${member}`, 'no')).status).toBe('denied');
    expect((await second).status).toBe('denied');

    const aborted = new AbortController();
    const third = approvals.request({ ...input, approver: 'owner' }, aborted.signal);
    const id3 = await pendingId();
    aborted.abort();
    expect((await third).status).toBe('cancelled');
    expect((await approvals.get(id3)).status).toBe('cancelled');

    const fourth = approvals.request({ ...input, approver: 'owner' }, new AbortController().signal);
    await pendingId();
    expect(await approvals.cancelForAgents([agent])).toBe(1);
    expect((await fourth).status).toBe('cancelled');
    await expect(approvals.get('apr_nope')).rejects.toMatchObject({ code: 'APPROVAL_NOT_FOUND' });
  });

  it('limits and settings persist and reload (another replica sees them)', async () => {
    const limits = new LimitService(store, audit);
    await limits.set(agent, { callsPerMinute: 1, maxSessions: 3 }, 'admin');
    const other = new LimitService(store, audit);
    await other.load();
    expect(other.effective(agent, { callsPerMinute: 600, maxSessions: 20 })).toEqual({ callsPerMinute: 1, maxSessions: 3 });
    expect(other.effective('agt_other', { callsPerMinute: 600, maxSessions: null })).toEqual({ callsPerMinute: 600, maxSessions: null });
    expect(other.tryCall(agent, 1)).toBe(true);
    expect(other.tryCall(agent, 1)).toBe(false);
    await expect(limits.set('agt_nope', { callsPerMinute: 1, maxSessions: 1 }, 'admin')).rejects.toMatchObject({ code: 'IDENTITY_NOT_FOUND' });

    const settings = new SettingsStore(store, audit);
    await settings.update({ approvalTimeoutSeconds: 5, redactPaths: ['**.ssn'] }, 'admin');
    const reloaded = new SettingsStore(store, audit);
    await reloaded.load();
    expect(reloaded.current).toMatchObject({ approvalTimeoutSeconds: 5, redactPaths: ['**.ssn'], callsPerMinute: 600 });
  });
});
