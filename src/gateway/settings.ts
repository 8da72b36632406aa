import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import { ReplicatedView, type Store } from '../store/index.ts';

export const GATEWAY_SETTINGS_CHANGED = 'gateway.settings.changed';

declare module '../store/events.ts' {
  interface ChangeTopics {
    [GATEWAY_SETTINGS_CHANGED]: Record<string, never>;
  }
}

const limit = z.number().int().min(1).max(1_000_000).nullable();

/** Runtime settings of the gateway, stored (audited) and shared by every replica. */
export const gatewaySettingsSchema = z
  .object({
    /** How long a call waits for a human before it is denied. */
    approvalTimeoutSeconds: z.number().int().min(1).max(86_400).default(120),
    /** Where approval requests are announced (POST, JSON, signed when a secret is set). */
    approvalWebhookUrl: z.url().max(2000).nullable().default(null),
    /** A group whose members may decide approvals besides the agent's owner. */
    approverGroupId: z.string().max(64).nullable().default(null),
    /** Argument paths replaced by "[redacted]" in audit records and approval requests (`a.b`, `*` = one level, `**` = any depth). */
    redactPaths: z
      .array(z.string().min(1).max(200))
      .max(200)
      // Keys match case- and separator-insensitively (`apiKey` = `API_KEY`), see redact.ts.
      .default(['**.password', '**.token', '**.secret', '**.apiKey', '**.authorization', '**.accessToken', '**.refreshToken', '**.idToken', '**.clientSecret', '**.privateKey', '**.cookie']),
    /** Defaults for agents without their own limits; null = unlimited. */
    callsPerMinute: limit.default(600),
    maxSessions: limit.default(20),
    /** Extra Host values accepted besides the public URL's (DNS-rebinding protection). */
    allowedHosts: z.array(z.string().min(1).max(300)).max(100).default([]),
    /** Extra Origin values accepted besides the public URL's. */
    allowedOrigins: z.array(z.string().min(1).max(300)).max(100).default([]),
    /** Sessions unused this long are closed. */
    sessionIdleSeconds: z.number().int().min(10).max(7 * 86_400).default(3600),
  })
  .strict();

export type GatewaySettings = z.infer<typeof gatewaySettingsSchema>;
type SettingsShape = typeof gatewaySettingsSchema.shape;
/**
 * A patch names only what changes. Built from the fields without their defaults: `.partial()` keeps the
 * defaults, so a patch of one setting used to reset every other one (redaction paths, limits, the
 * approver group, allowed hosts) to its default.
 */
export const gatewaySettingsPatch = z
  .object(Object.fromEntries(Object.entries(gatewaySettingsSchema.shape).map(([key, field]) => [key, field.unwrap().optional()])) as { [K in keyof SettingsShape]: z.ZodOptional<ReturnType<SettingsShape[K]['unwrap']>> })
  .strict();

const KEY = 'gateway';

export class SettingsStore {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #view: ReplicatedView<GatewaySettings, typeof GATEWAY_SETTINGS_CHANGED>;

  constructor(store: Store, audit: AuditLog) {
    this.#store = store;
    this.#audit = audit;
    this.#view = new ReplicatedView({
      name: 'gateway settings',
      events: store.events,
      topics: [GATEWAY_SETTINGS_CHANGED],
      load: async () => {
        const row = await store.db.selectFrom('mcp_settings').select('value').where('key', '=', KEY).executeTakeFirst();
        return gatewaySettingsSchema.parse(row ? JSON.parse(row.value) : {});
      },
      initial: gatewaySettingsSchema.parse({}),
    });
  }

  /**
   * The last loaded settings, served while the store is away: they configure (redaction, timeouts), they
   * grant nothing, and every call needs the store for its decision record anyway.
   */
  get current(): GatewaySettings {
    return this.#view.last() as GatewaySettings;
  }

  load(): Promise<void> {
    return this.#view.reload();
  }

  async update(patch: z.infer<typeof gatewaySettingsPatch>, actor: string): Promise<GatewaySettings> {
    const next = gatewaySettingsSchema.parse({ ...this.current, ...patch });
    await this.#store.transaction(async (tx) => {
      const now = new Date().toISOString();
      const value = JSON.stringify(next);
      const existing = await tx.db.selectFrom('mcp_settings').select('key').where('key', '=', KEY).executeTakeFirst();
      if (existing) await tx.db.updateTable('mcp_settings').set({ value, updated_at: now }).where('key', '=', KEY).execute();
      else await tx.db.insertInto('mcp_settings').values({ key: KEY, value, updated_at: now }).execute();
      // Old and new values (settings hold no secrets: the webhook secret lives in the vault), so that e.g.
      // emptying redactPaths or re-pointing the approval webhook can be traced to who did it.
      const changed = Object.keys(patch) as (keyof GatewaySettings)[];
      const from = Object.fromEntries(changed.map((k) => [k, this.current[k]]));
      const to = Object.fromEntries(changed.map((k) => [k, next[k]]));
      await this.#audit.appendIn(tx, { actor, action: 'mcp.settings.update', target: KEY, outcome: 'success', details: { changed, from, to } });
      tx.publish(GATEWAY_SETTINGS_CHANGED, {});
    });
    // The commit's change event has reloaded the view already (read-your-writes).
    return next;
  }
}
