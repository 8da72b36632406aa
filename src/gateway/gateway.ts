import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { IdentityService } from '../identity/index.ts';
import type { EntityJson } from '../policy/index.ts';
import type { Store } from '../store/index.ts';
import type { Vault } from '../vault/index.ts';
import { AgentDirectory } from './agents.ts';
import { ApprovalService } from './approvals.ts';
import { GatewayAuditor } from './auditor.ts';
import { CredentialBroker } from './credentials.ts';
import { toCedarRecord, type PolicyPoint } from './decide.ts';
import { KillSwitch } from './kill-switch.ts';
import { LimitService } from './limits.ts';
import { GatewayProxy, type AgentAuthenticator, type ProxyDependencies } from './proxy.ts';
import { discoverPrompts } from './discovery.ts';
import { PromptNames } from './prompt-names.ts';
import { Rediscovery } from './rediscovery.ts';
import { GATEWAY_REGISTRY_CHANGED, UpstreamRegistry } from './registry.ts';
import { SessionTable, type GatewaySession } from './sessions.ts';
import { SettingsStore } from './settings.ts';

export interface GatewayDependencies {
  store: Store;
  audit: AuditLog;
  identity: IdentityService;
  vault: Vault;
  pdp: PolicyPoint & { addEntitySource(source: { name: string; topics: string[]; load(): Promise<EntityJson[]> }): Promise<void> };
  logger: Logger;
  publicUrl: () => string;
  authenticate: AgentAuthenticator;
  /** Per-session separation of duties (src/governance `sod.sessionConflict`). */
  sessionSod?: ProxyDependencies['sessionSod'];
}

/** The MCP gateway: registry, proxy, approvals, limits, kill switch, wired together. One per process. */
export class Gateway {
  readonly registry: UpstreamRegistry;
  readonly sessions = new SessionTable();
  readonly approvals: ApprovalService;
  readonly limits: LimitService;
  readonly settings: SettingsStore;
  readonly killSwitch: KillSwitch;
  readonly proxy: GatewayProxy;
  readonly credentials: CredentialBroker;
  readonly #deps: GatewayDependencies;
  readonly #agents: AgentDirectory;
  readonly #auditor: GatewayAuditor;
  #authenticate: AgentAuthenticator;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(deps: GatewayDependencies) {
    this.#deps = deps;
    this.#authenticate = deps.authenticate;
    this.credentials = new CredentialBroker(deps.store, deps.vault);
    this.registry = new UpstreamRegistry(deps.store, deps.audit, deps.vault, this.credentials);
    this.approvals = new ApprovalService(deps.store, deps.audit, deps.vault, deps.logger);
    this.limits = new LimitService(deps.store, deps.audit);
    this.settings = new SettingsStore(deps.store, deps.audit);
    this.killSwitch = new KillSwitch(deps.store, deps.audit, deps.identity);
    this.#agents = new AgentDirectory(deps.store);
    this.#auditor = new GatewayAuditor(deps.audit, deps.logger);
    const prompts = new PromptNames(async (server) => discoverPrompts(await this.registry.discoveryTarget(await this.registry.get(server))), deps.logger);
    this.registry.onChange((server) => prompts.forget(server));
    this.approvals.configure({ webhookUrl: () => this.settings.current.approvalWebhookUrl, approverGroup: () => this.settings.current.approverGroupId });
    this.proxy = new GatewayProxy({
      publicUrl: deps.publicUrl,
      registry: this.registry,
      rediscovery: new Rediscovery((server) => this.registry.discover(server, 'system:gateway'), deps.logger),
      prompts,
      sessions: this.sessions,
      pdp: deps.pdp,
      authenticate: () => this.#authenticate,
      agents: this.#agents,
      approvals: this.approvals,
      limits: this.limits,
      auditor: this.#auditor,
      credentials: this.credentials,
      settings: this.settings,
      logger: deps.logger,
      closeSession: (session, reason, notify) => this.closeSession(session, reason, notify),
      sessionSod: deps.sessionSod,
    });
    // Kill switch, on every replica: an identity that stops being active loses its sessions and calls at once.
    this.#agents.onStopped((id) => void this.#stop(id));
  }

  async init(): Promise<void> {
    await Promise.all([this.registry.load(), this.settings.load(), this.limits.load()]);
    await this.#deps.pdp.addEntitySource({ name: 'gateway', topics: [GATEWAY_REGISTRY_CHANGED], load: async () => {
        // Read the store, not the cache: this runs on the same change event that refreshes the cache.
        await this.registry.load();
        return this.#entities();
      } });
    this.#sweeper = setInterval(() => this.#sweep(), 30_000);
    this.#sweeper.unref();
  }

  /** Replaces how agent tokens are verified (tests use this to stand in for the OAuth server). */
  setAuthenticator(authenticate: AgentAuthenticator): void {
    this.#authenticate = authenticate;
  }

  async closeSession(session: GatewaySession, reason: string, notifyUpstream: boolean): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    this.sessions.remove(session);
    session.abort(reason);
    if (notifyUpstream && session.upstreamSessionId !== undefined) {
      // Transports §Session Management: end the upstream session too, with the gateway's credential.
      const server = this.registry.server(session.server);
      try {
        const headers: Record<string, string> = { 'mcp-session-id': session.upstreamSessionId };
        if (server?.transport === 'http') for (const [k, v] of Object.entries(await this.credentials.headersFor(server.name, server.credential !== null))) headers[k.toLowerCase()] = v;
        const response = await session.endpoint.fetch({ method: 'DELETE', headers, signal: AbortSignal.timeout(5000) });
        response.body?.destroy();
      } catch {
        // Best effort: the upstream expires the session on its own.
      }
    }
    await session.endpoint.close();
  }

  async close(): Promise<void> {
    if (this.#sweeper) clearInterval(this.#sweeper);
    await Promise.all(this.sessions.all().map((s) => this.closeSession(s, 'Mandate is shutting down', true)));
    await this.flushAudit();
  }

  /** Resolves once every gateway record so far is durable in the audit chain. */
  async flushAudit(): Promise<void> {
    await this.#auditor.flush();
    await this.#deps.audit.flush();
  }

  async #stop(identityId: string): Promise<void> {
    const sessions = this.sessions.ofIdentity(identityId);
    await Promise.all(sessions.map((s) => this.closeSession(s, 'kill switch: the agent was suspended', true)));
    await this.approvals.cancelForAgents([identityId]).catch((error) => this.#deps.logger.error({ err: error }, 'cancelling approvals failed'));
    if (sessions.length > 0) {
      await this.#deps.audit
        .append({ actor: 'system:gateway', action: 'mcp.sessions.close', target: identityId, outcome: 'success', details: { reason: 'identity no longer active', sessions: sessions.map((s) => s.id) } })
        .catch((error: unknown) => this.#deps.logger.error({ err: error, identityId }, 'gateway: recording the kill switch in the audit chain failed'));
    }
  }

  #sweep(): void {
    const idle = this.settings.current.sessionIdleSeconds * 1000;
    const now = Date.now();
    for (const session of this.sessions.all()) {
      if (now - session.lastSeen > idle) void this.closeSession(session, 'idle', true).catch((error: unknown) => this.#deps.logger.warn({ err: error, session: session.id }, 'gateway: closing an idle session failed'));
    }
  }

  /** Tool::"server/tool" (labels, server; parent McpServer::"server") for the policy engine. */
  #entities(): EntityJson[] {
    const out: EntityJson[] = [];
    for (const server of this.registry.servers()) {
      out.push({ uid: { type: 'McpServer', id: server.name }, attrs: { name: server.name, transport: server.transport, labels: server.labels }, parents: [] });
      for (const tool of this.registry.tools(server.name)) {
        out.push({
          uid: { type: 'Tool', id: `${server.name}/${tool.name}` },
          attrs: { server: server.name, name: tool.name, labels: tool.labels, settings: toCedarRecord(tool.settings) },
          parents: [{ type: 'McpServer', id: server.name }],
        });
      }
    }
    return out;
  }
}
