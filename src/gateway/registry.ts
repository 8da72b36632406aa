import type { AuditLog } from '../audit/index.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { MandateError } from '../core/errors.ts';
import { ReplicatedView, type Store, type Tx } from '../store/index.ts';
import type { Vault } from '../vault/index.ts';
import { credentialSecretName, envSecretName, type CredentialBroker } from './credentials.ts';
import { discoverTools, type DiscoveredTool, type DiscoveryTarget } from './discovery.ts';
import type { CredentialKind, ServerSettings, ToolSettings, UpstreamCredential, UpstreamServer, UpstreamTool } from './types.ts';

/** Change-event topic: an upstream or its tools changed (every replica reloads it). */
export const GATEWAY_REGISTRY_CHANGED = 'gateway.registry.changed';

declare module '../store/events.ts' {
  interface ChangeTopics {
    [GATEWAY_REGISTRY_CHANGED]: { server: string };
  }
}

export const SERVER_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const LABEL = /^[a-z0-9][a-z0-9_:.-]{0,63}$/;

export type ServerInput =
  | { name: string; url: string; labels?: string[] | undefined; settings?: ServerSettings | undefined; credential?: UpstreamCredential | undefined }
  | { name: string; command: string; args?: string[] | undefined; env?: Record<string, string> | undefined; labels?: string[] | undefined; settings?: ServerSettings | undefined; credential?: UpstreamCredential | undefined };

interface Cached {
  server: UpstreamServer;
  tools: Map<string, UpstreamTool>;
}

/**
 * Upstream MCP servers and their discovered tools. Reads are served from memory (the gateway's hot
 * path); every change commits with its audit record and is announced to every replica.
 */
export class UpstreamRegistry {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #vault: Vault;
  readonly #credentials: CredentialBroker;
  readonly #clock: Clock;
  readonly #view: ReplicatedView<Map<string, Cached>, typeof GATEWAY_REGISTRY_CHANGED>;
  readonly #listeners = new Set<(server: string) => void>();

  constructor(store: Store, audit: AuditLog, vault: Vault, credentials: CredentialBroker, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#audit = audit;
    this.#vault = vault;
    this.#credentials = credentials;
    this.#clock = options.clock ?? systemClock;
    this.#view = new ReplicatedView({
      name: 'gateway registry',
      events: store.events,
      topics: [GATEWAY_REGISTRY_CHANGED],
      load: async () => {
        const rows = await this.#store.db.selectFrom('mcp_servers').select('name').execute();
        const next = new Map<string, Cached>();
        for (const row of rows) {
          const loaded = await this.#read(row.name);
          if (loaded) next.set(row.name, loaded);
        }
        return next;
      },
      // One server changed: re-read only it.
      apply: async (current, event) => {
        const name = event.data.server;
        const loaded = await this.#read(name);
        const next = new Map(current);
        if (loaded) next.set(name, loaded);
        else next.delete(name);
        return next;
      },
      onUpdate: (value, event) => {
        if (event) this.#emit(event.data.server);
        else for (const name of value.keys()) this.#emit(name);
      },
      // The registry answered from its last load while the store was away before it was a view; kept.
      initial: new Map(),
    });
  }

  get #cache(): Map<string, Cached> {
    return this.#view.last() ?? new Map();
  }

  /** Called after a server or its tools changed (here or on another replica). */
  onChange(listener: (server: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  load(): Promise<void> {
    return this.#view.reload();
  }

  server(name: string): UpstreamServer | undefined {
    return this.#cache.get(name)?.server;
  }

  tool(server: string, name: string): UpstreamTool | undefined {
    return this.#cache.get(server)?.tools.get(name);
  }

  servers(): UpstreamServer[] {
    return [...this.#cache.values()].map((c) => c.server).sort((a, b) => a.name.localeCompare(b.name));
  }

  tools(server: string): UpstreamTool[] {
    return [...(this.#cache.get(server)?.tools.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<UpstreamServer> {
    const loaded = await this.#read(name);
    if (!loaded) throw new MandateError('MCP_SERVER_NOT_FOUND', `MCP server ${name} not found`, 404, { name });
    return loaded.server;
  }

  /** Registers an upstream, then discovers its tools (a failed discovery is recorded on the server, not fatal). */
  async create(input: ServerInput, actor: string): Promise<{ server: UpstreamServer; tools: UpstreamTool[] }> {
    if (!SERVER_NAME.test(input.name)) throw new MandateError('MCP_SERVER_NAME_INVALID', 'server names are 1-63 lowercase letters, digits, - and _', 400);
    const labels = checkLabels(input.labels ?? []);
    const http = 'url' in input;
    if (http) checkUrl(input.url);
    await this.#store.transaction(async (tx) => {
      const clash = await tx.db.selectFrom('mcp_servers').select('name').where('name', '=', input.name).executeTakeFirst();
      if (clash) throw new MandateError('MCP_SERVER_EXISTS', `MCP server ${input.name} already exists`, 409, { name: input.name });
      const now = this.#now();
      const env = !http ? (input.env ?? {}) : {};
      const envNames = Object.keys(env).sort();
      if (envNames.length > 0) await this.#vault.put(envSecretName(input.name), JSON.stringify(env), actor, tx);
      if (input.credential) await this.#vault.put(credentialSecretName(input.name), JSON.stringify(input.credential), actor, tx);
      await tx.db
        .insertInto('mcp_servers')
        .values({
          name: input.name,
          transport: http ? 'http' : 'stdio',
          url: http ? input.url : null,
          command: http ? null : input.command,
          args: JSON.stringify(http ? [] : (input.args ?? [])),
          env_secret: envNames.length > 0 ? JSON.stringify(envNames) : null,
          credential_secret: input.credential ? credentialSecretName(input.name) : null,
          credential_kind: input.credential?.kind ?? null,
          labels: JSON.stringify(labels),
          settings: JSON.stringify(input.settings ?? {}),
          discovered_at: null,
          discovery_error: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      await this.#audit.appendIn(tx, {
        actor,
        action: 'mcp.server.create',
        target: input.name,
        outcome: 'success',
        details: { transport: http ? 'http' : 'stdio', url: http ? input.url : null, command: http ? null : input.command, envNames, credential: input.credential?.kind ?? null },
      });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server: input.name });
    });
    await this.#reload(input.name);
    try {
      await this.discover(input.name, actor);
    } catch {
      // Recorded on the server (discoveryError); the admin can retry with POST .../discover.
    }
    await this.#reload(input.name);
    return { server: this.server(input.name) ?? (await this.get(input.name)), tools: this.tools(input.name) };
  }

  /** Connects to the upstream (with its credential) and stores the tools it lists now. Labels of known tools are kept. */
  async discover(name: string, actor: string): Promise<UpstreamTool[]> {
    const server = await this.get(name);
    let tools: DiscoveredTool[];
    try {
      tools = await discoverTools(await this.discoveryTarget(server));
    } catch (error) {
      const message = (error as Error).message.slice(0, 500);
      await this.#store.transaction(async (tx) => {
        await tx.db.updateTable('mcp_servers').set({ discovery_error: message, updated_at: this.#now() }).where('name', '=', name).execute();
        await this.#audit.appendIn(tx, { actor, action: 'mcp.server.discover', target: name, outcome: 'failure', details: { error: message } });
        tx.publish(GATEWAY_REGISTRY_CHANGED, { server: name });
      });
      await this.#reload(name);
      throw error;
    }
    await this.#store.transaction(async (tx) => {
      const now = this.#now();
      const known = new Set((await tx.db.selectFrom('mcp_tools').select('name').where('server', '=', name).execute()).map((r) => r.name));
      const seen = new Set<string>();
      for (const tool of tools) {
        if (seen.has(tool.name)) continue;
        seen.add(tool.name);
        const values = { description: tool.description, input_schema: JSON.stringify(tool.inputSchema ?? {}), present: 1, updated_at: now };
        if (known.has(tool.name)) await tx.db.updateTable('mcp_tools').set(values).where('server', '=', name).where('name', '=', tool.name).execute();
        else await tx.db.insertInto('mcp_tools').values({ server: name, name: tool.name, labels: '[]', settings: '{}', ...values }).execute();
      }
      const gone = [...known].filter((t) => !seen.has(t));
      if (gone.length > 0) await tx.db.updateTable('mcp_tools').set({ present: 0, updated_at: now }).where('server', '=', name).where('name', 'in', gone).execute();
      await tx.db.updateTable('mcp_servers').set({ discovered_at: now, discovery_error: null, updated_at: now }).where('name', '=', name).execute();
      await this.#audit.appendIn(tx, { actor, action: 'mcp.server.discover', target: name, outcome: 'success', details: { tools: seen.size, gone } });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server: name });
    });
    await this.#reload(name);
    return this.tools(name);
  }

  async discoveryTarget(server: UpstreamServer): Promise<DiscoveryTarget> {
    if (server.transport === 'http') return { transport: 'http', url: server.url!, headers: await this.#credentials.headersFor(server.name, server.credential !== null) };
    return { transport: 'stdio', command: server.command!, args: server.args, env: await this.stdioEnv(server) };
  }

  /** The stdio child's environment, from the vault. */
  async stdioEnv(server: UpstreamServer): Promise<Record<string, string>> {
    if (server.envNames.length === 0) return {};
    const text = await this.#vault.reveal(envSecretName(server.name));
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  }

  async setToolLabels(server: string, tool: string, patch: { labels?: string[] | undefined; settings?: ToolSettings | undefined }, actor: string): Promise<UpstreamTool> {
    const labels = patch.labels === undefined ? undefined : checkLabels(patch.labels);
    await this.#store.transaction(async (tx) => {
      const row = await tx.db.selectFrom('mcp_tools').select(['labels', 'settings']).where('server', '=', server).where('name', '=', tool).executeTakeFirst();
      if (!row) {
        await this.#requireServer(tx, server);
        throw new MandateError('MCP_TOOL_NOT_FOUND', `tool ${tool} of ${server} not found (discover it first)`, 404, { server, tool });
      }
      await tx.db
        .updateTable('mcp_tools')
        .set({
          ...(labels !== undefined && { labels: JSON.stringify(labels) }),
          ...(patch.settings !== undefined && { settings: JSON.stringify(patch.settings) }),
          updated_at: this.#now(),
        })
        .where('server', '=', server)
        .where('name', '=', tool)
        .execute();
      await this.#audit.appendIn(tx, { actor, action: 'mcp.tool.update', target: `${server}/${tool}`, outcome: 'success', details: { from: JSON.parse(row.labels) as unknown, labels: labels ?? null, settings: patch.settings ?? null } });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server });
    });
    await this.#reload(server);
    return this.tool(server, tool)!;
  }

  async update(name: string, patch: { labels?: string[] | undefined; settings?: ServerSettings | undefined }, actor: string): Promise<UpstreamServer> {
    const labels = patch.labels === undefined ? undefined : checkLabels(patch.labels);
    await this.#store.transaction(async (tx) => {
      await this.#requireServer(tx, name);
      await tx.db
        .updateTable('mcp_servers')
        .set({ ...(labels !== undefined && { labels: JSON.stringify(labels) }), ...(patch.settings !== undefined && { settings: JSON.stringify(patch.settings) }), updated_at: this.#now() })
        .where('name', '=', name)
        .execute();
      await this.#audit.appendIn(tx, { actor, action: 'mcp.server.update', target: name, outcome: 'success', details: { labels: labels ?? null, settings: patch.settings ?? null } });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server: name });
    });
    await this.#reload(name);
    return this.get(name);
  }

  /** Stores (replaces) or, with `null`, removes the upstream credential. Its value is never readable again through the API. */
  async setCredential(name: string, credential: UpstreamCredential | null, actor: string): Promise<UpstreamServer> {
    await this.#store.transaction(async (tx) => {
      await this.#requireServer(tx, name);
      if (credential) await this.#vault.put(credentialSecretName(name), JSON.stringify(credential), actor, tx);
      else await this.#vault.remove(credentialSecretName(name), actor, tx);
      await tx.db
        .updateTable('mcp_servers')
        .set({ credential_secret: credential ? credentialSecretName(name) : null, credential_kind: credential?.kind ?? null, updated_at: this.#now() })
        .where('name', '=', name)
        .execute();
      await this.#audit.appendIn(tx, { actor, action: credential ? 'mcp.server.credential.set' : 'mcp.server.credential.remove', target: name, outcome: 'success', details: { kind: credential?.kind ?? null } });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server: name });
    });
    await this.#reload(name);
    return this.get(name);
  }

  async remove(name: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      await this.#requireServer(tx, name);
      await tx.db.deleteFrom('mcp_tools').where('server', '=', name).execute();
      await tx.db.deleteFrom('mcp_servers').where('name', '=', name).execute();
      await this.#vault.remove(credentialSecretName(name), actor, tx);
      await this.#vault.remove(envSecretName(name), actor, tx);
      await this.#audit.appendIn(tx, { actor, action: 'mcp.server.delete', target: name, outcome: 'success' });
      tx.publish(GATEWAY_REGISTRY_CHANGED, { server: name });
    });
    await this.#reload(name);
  }

  async #requireServer(tx: Tx, name: string): Promise<void> {
    const row = await tx.db.selectFrom('mcp_servers').select('name').where('name', '=', name).executeTakeFirst();
    if (!row) throw new MandateError('MCP_SERVER_NOT_FOUND', `MCP server ${name} not found`, 404, { name });
  }

  /** After a write of this process: in order with the change events, so an older read never wins. */
  #reload(name: string): Promise<void> {
    return this.#view.refresh({ topic: GATEWAY_REGISTRY_CHANGED, data: { server: name } });
  }

  #emit(name: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(name);
      } catch {
        // One listener's failure must not keep the others stale.
      }
    }
  }

  async #read(name: string): Promise<Cached | undefined> {
    const row = await this.#store.db.selectFrom('mcp_servers').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    const toolRows = await this.#store.db.selectFrom('mcp_tools').selectAll().where('server', '=', name).execute();
    const server: UpstreamServer = {
      name: row.name,
      transport: row.transport,
      url: row.url,
      command: row.command,
      args: JSON.parse(row.args) as string[],
      envNames: row.env_secret ? (JSON.parse(row.env_secret) as string[]) : [],
      credential: row.credential_kind ? { kind: row.credential_kind as CredentialKind, configured: true } : null,
      labels: JSON.parse(row.labels) as string[],
      settings: JSON.parse(row.settings) as ServerSettings,
      discoveredAt: row.discovered_at,
      discoveryError: row.discovery_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
    const tools = new Map<string, UpstreamTool>();
    for (const t of toolRows) {
      tools.set(t.name, {
        server: t.server,
        name: t.name,
        description: t.description,
        inputSchema: JSON.parse(t.input_schema) as unknown,
        labels: JSON.parse(t.labels) as string[],
        settings: JSON.parse(t.settings) as ToolSettings,
        present: t.present === 1,
        updatedAt: t.updated_at,
      });
    }
    return { server, tools };
  }

  #now(): string {
    return this.#clock.now().toISOString();
  }
}

function checkLabels(labels: string[]): string[] {
  for (const label of labels) {
    if (!LABEL.test(label)) throw new MandateError('MCP_LABEL_INVALID', `invalid label ${JSON.stringify(label).slice(0, 80)}: lowercase letters, digits and _:.-`, 400);
  }
  return [...new Set(labels)].sort();
}

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MandateError('MCP_SERVER_URL_INVALID', 'url must be an absolute http(s) URL', 400);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new MandateError('MCP_SERVER_URL_INVALID', 'url must be http or https', 400);
  // Credentials belong in the vault, not in a URL that is shown and logged.
  if (parsed.username || parsed.password) throw new MandateError('MCP_SERVER_URL_INVALID', 'put credentials in `credential`, not in the URL', 400);
}
