import { z } from 'zod';

/**
 * Every setting Mandate reads, declared once: its schema (with its default), its environment variable,
 * its command-line flag where it has one, and the line that documents it. `config.ts` builds the
 * validation, the environment mapping and the types from this list, and `npm run docs:config` writes
 * README's configuration table from it (a test fails when that table is stale).
 */
export interface Setting<S extends z.ZodType = z.ZodType> {
  schema: S;
  env: `MANDATE_${string}`;
  /** Command-line flags that set it, as README shows them. */
  flags?: string;
  /** The default as README shows it, where the schema's own default is not what a reader needs. */
  shownDefault?: string;
  doc: string;
}

const setting = <S extends z.ZodType>(spec: Setting<S>): Setting<S> => spec;

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}

export const SETTINGS = {
  mode: setting({
    schema: z.enum(['production', 'dev', 'demo']).default('production'),
    env: 'MANDATE_MODE',
    flags: '`--demo`, `--dev`',
    doc: '`dev`/`demo` generate missing secrets into the data directory and allow an http public URL',
  }),
  port: setting({ schema: z.coerce.number().int().min(0).max(65535).default(7400), env: 'MANDATE_PORT', flags: '`--port`', doc: 'listening port' }),
  host: setting({ schema: z.string().min(1).default('127.0.0.1'), env: 'MANDATE_HOST', flags: '`--host`', doc: 'bind address' }),
  /**
   * Serve the admin API (`/api/v1`) on a listener of its own, and only there: operators reach the
   * control plane (the kill switch among it) whatever agents do to the main listener, and it can be
   * bound to an internal interface (`adminHost`). Unset: the admin API is on the main listener.
   */
  adminPort: setting({
    schema: z.coerce.number().int().min(0).max(65535).optional(),
    env: 'MANDATE_ADMIN_PORT',
    shownDefault: '(unset)',
    doc: 'serve the admin API (`/api/v1`) on a listener of its own, and only there (the main listener then answers 404 for it): operators keep the control plane, the kill switch among it, however agents load the main listener; point `MANDATE_URL` at it',
  }),
  adminHost: setting({ schema: z.string().min(1).default('127.0.0.1'), env: 'MANDATE_ADMIN_HOST', doc: 'bind address of that admin listener (an internal interface)' }),
  dataDir: setting({ schema: z.string().min(1).default('./.mandate'), env: 'MANDATE_DATA_DIR', flags: '`--data`', doc: 'embedded store and dev secrets' }),
  databaseUrl: setting({ schema: z.string().url().optional(), env: 'MANDATE_DATABASE_URL', shownDefault: '(embedded)', doc: 'PostgreSQL connection string' }),
  databaseSchema: setting({ schema: z.string().regex(/^[a-z_][a-z0-9_]{0,40}$/).optional(), env: 'MANDATE_DATABASE_SCHEMA', shownDefault: '(default)', doc: 'PostgreSQL schema (search_path)' }),
  publicUrl: setting({ schema: z.string().url().optional(), env: 'MANDATE_PUBLIC_URL', shownDefault: '`http://localhost:<port>`', doc: 'externally visible base URL; the OAuth issuer; https in production' }),
  adminToken: setting({ schema: z.string().optional(), env: 'MANDATE_ADMIN_TOKEN', shownDefault: '(generated in dev/demo)', doc: 'bearer token for `/api/v1`; ≥ 32 characters' }),
  scimToken: setting({ schema: z.string().optional(), env: 'MANDATE_SCIM_TOKEN', shownDefault: '(generated in dev/demo)', doc: 'bearer token for `/scim/v2`; ≥ 32 characters' }),
  /** 32 bytes, base64 or base64url: seals keys and secrets at rest. */
  masterKey: setting({ schema: z.string().optional(), env: 'MANDATE_MASTER_KEY', shownDefault: '(generated in dev/demo)', doc: '32 bytes, base64: seals keys and secrets at rest' }),
  inactivityDays: setting({ schema: z.coerce.number().int().min(1).max(3650).default(90), env: 'MANDATE_INACTIVITY_DAYS', doc: 'unused this long → an `inactive` finding' }),
  auditCheckpointEvery: setting({ schema: z.coerce.number().int().min(1).max(1_000_000).default(1000), env: 'MANDATE_AUDIT_CHECKPOINT_EVERY', doc: 'a signed checkpoint every N audit events' }),
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: setting({ schema: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024), env: 'MANDATE_MAX_BODY_BYTES', doc: 'larger request bodies get 413' }),
  /**
   * Longest a client may take to send a whole request (headers and body). Node's default is 300 s; a
   * client trickling bodies would hold a socket that long. Answers may take longer (SSE streams,
   * calls waiting for approval): this bounds receiving the request only.
   */
  requestTimeoutSeconds: setting({
    schema: z.coerce.number().int().min(1).max(3600).default(30),
    env: 'MANDATE_REQUEST_TIMEOUT_SECONDS',
    doc: 'longest a client may take to send a whole request (headers and body) → 408; answers may take longer',
  }),
  /**
   * Most connections each listener holds open at once; more are dropped as they arrive. Without a cap,
   * a client opening connections without end exhausts file descriptors and memory for everyone.
   */
  maxConnections: setting({
    schema: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    env: 'MANDATE_MAX_CONNECTIONS',
    doc: 'most connections each listener (HTTP, mTLS) holds at once; more are dropped on arrival and logged (at most every 10 s)',
  }),
  /**
   * Most connections one client address holds on a listener: one client cannot take every slot of
   * `maxConnections` (and lock out the operator's kill switch). Behind a reverse proxy every
   * connection comes from the proxy: raise it, and limit clients in the proxy.
   */
  maxConnectionsPerClient: setting({
    schema: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
    env: 'MANDATE_MAX_CONNECTIONS_PER_CLIENT',
    doc: 'most of them from one client address, so one client cannot take every slot; behind a reverse proxy (one address for all) raise it and limit clients in the proxy',
  }),
  auditStreamMaxBackoffMs: setting({
    schema: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
    env: 'MANDATE_AUDIT_STREAM_MAX_BACKOFF_MS',
    doc: 'longest wait between retries while an audit stream receiver (webhook) is down, in milliseconds',
  }),
  jitMaxSeconds: setting({ schema: z.coerce.number().int().min(60).max(90 * 86_400).default(8 * 3600), env: 'MANDATE_JIT_MAX_SECONDS', doc: 'longest just-in-time grant any approval rule may allow (seconds)' }),
  /**
   * Whether SCIM may change the members of groups that approve access (approval-rule stages, the MCP
   * gateway's approver group). Off by default: a compromised identity provider must not be able to make
   * someone an approver.
   */
  scimManagesApproverGroups: setting({
    schema: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).default(false),
    env: 'MANDATE_SCIM_MANAGES_APPROVER_GROUPS',
    doc: '`true` lets SCIM change the members of groups that approve access (see [docs/scim.md](docs/scim.md#groups-that-approve-access))',
  }),
  /**
   * Browser origins allowed to call the authorization server cross-origin (CORS on `/oauth/token`,
   * discovery, userinfo, registration, PAR), comma-separated, e.g. `https://app.example.com`. Empty
   * (the default): no CORS at all, so a web page on another origin can neither read a token response
   * nor preflight one. Agents and workloads are not browsers and need none. Exact origins only: no `*`.
   */
  corsOrigins: setting({
    schema: z
      .union([z.array(z.string()), z.string().transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o !== ''))])
      .pipe(z.array(z.string().refine(isOrigin, 'must be an origin such as https://app.example.com (scheme, host and port only)')).max(100))
      .default([]),
    env: 'MANDATE_CORS_ORIGINS',
    shownDefault: '(empty)',
    doc: 'comma-separated browser origins (exact `scheme://host[:port]`, no `*`) allowed CORS on the authorization server (`/oauth/token`, discovery, registration); empty: no `Access-Control-Allow-*` on any response or preflight',
  }),
  logLevel: setting({ schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), env: 'MANDATE_LOG_LEVEL', doc: 'pino level' }),
} as const;

export type SettingKey = keyof typeof SETTINGS;

/** README's configuration table, exactly as `npm run docs:config` writes it. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s) => {
    const fallback = (s.schema as z.ZodType).safeParse(undefined);
    const shown = s.shownDefault ?? (fallback.success && fallback.data !== undefined ? `\`${Array.isArray(fallback.data) ? fallback.data.join(',') : String(fallback.data)}\`` : '(unset)');
    return `| \`${s.env}\` | ${s.flags ?? ''} | ${shown} | ${s.doc} |`;
  });
  return ['| variable | flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
