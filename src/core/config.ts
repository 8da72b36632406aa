import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { randomToken } from './crypto.ts';
import { MandateError } from './errors.ts';

/**
 * Mandate's configuration, validated once at start. Sources, later ones winning: defaults, a JSON file
 * (`--config` / MANDATE_CONFIG), environment (MANDATE_*), command-line flags.
 *
 * `production` refuses to start with anything insecure; `dev` and `demo` generate missing secrets and
 * keep them in the data directory so a restart finds the same ones.
 */
/** An origin as browsers send it in `Origin`: scheme, host and an optional port, nothing else. */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}

export const configSchema = z
  .object({
    mode: z.enum(['production', 'dev', 'demo']).default('production'),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(7400),
    /**
     * Serve the admin API (`/api/v1`) on a listener of its own, and only there: operators reach the
     * control plane (the kill switch among it) whatever agents do to the main listener, and it can be
     * bound to an internal interface (`adminHost`). Unset: the admin API is on the main listener.
     */
    adminPort: z.coerce.number().int().min(0).max(65535).optional(),
    adminHost: z.string().min(1).default('127.0.0.1'),
    dataDir: z.string().min(1).default('./.mandate'),
    databaseUrl: z.string().url().optional(),
    databaseSchema: z.string().regex(/^[a-z_][a-z0-9_]{0,40}$/).optional(),
    publicUrl: z.string().url().optional(),
    adminToken: z.string().optional(),
    scimToken: z.string().optional(),
    /** 32 bytes, base64 or base64url: seals keys and secrets at rest. */
    masterKey: z.string().optional(),
    inactivityDays: z.coerce.number().int().min(1).max(3650).default(90),
    auditCheckpointEvery: z.coerce.number().int().min(1).max(1_000_000).default(1000),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /**
     * Longest a client may take to send a whole request (headers and body). Node's default is 300 s; a
     * client trickling bodies would hold a socket that long. Answers may take longer (SSE streams,
     * calls waiting for approval): this bounds receiving the request only.
     */
    requestTimeoutSeconds: z.coerce.number().int().min(1).max(3600).default(30),
    /**
     * Most connections each listener holds open at once; more are dropped as they arrive. Without a cap,
     * a client opening connections without end exhausts file descriptors and memory for everyone.
     */
    maxConnections: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    /**
     * Most connections one client address holds on a listener: one client cannot take every slot of
     * `maxConnections` (and lock out the operator's kill switch). Behind a reverse proxy every
     * connection comes from the proxy: raise it, and limit clients in the proxy.
     */
    maxConnectionsPerClient: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
    /** Largest request body accepted, in bytes. */
    maxBodyBytes: z.coerce.number().int().min(1024).max(50 * 1024 * 1024).default(1024 * 1024),
    /** Longest wait between retries when an audit webhook receiver is down. */
    auditStreamMaxBackoffMs: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
    /** Longest just-in-time grant any approval rule may allow, in seconds (default 8 hours). */
    jitMaxSeconds: z.coerce.number().int().min(60).max(90 * 86_400).default(8 * 3600),
    /**
     * Whether SCIM may change the members of groups that approve access (approval-rule stages, the MCP
     * gateway's approver group). Off by default: a compromised identity provider must not be able to make
     * someone an approver.
     */
    scimManagesApproverGroups: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).default(false),
    /**
     * Browser origins allowed to call the authorization server cross-origin (CORS on `/oauth/token`,
     * discovery, userinfo, registration, PAR), comma-separated, e.g. `https://app.example.com`. Empty
     * (the default): no CORS at all, so a web page on another origin can neither read a token response
     * nor preflight one. Agents and workloads are not browsers and need none. Exact origins only: no `*`.
     */
    corsOrigins: z
      .union([z.array(z.string()), z.string().transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o !== ''))])
      .pipe(z.array(z.string().refine(isOrigin, 'must be an origin such as https://app.example.com (scheme, host and port only)')).max(100))
      .default([]),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;

export interface Config {
  mode: 'production' | 'dev' | 'demo';
  host: string;
  port: number;
  adminPort: number | undefined;
  adminHost: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databaseSchema: string | undefined;
  publicUrl: string;
  /** False when publicUrl was derived from the port; a server on port 0 then fills in the real one. */
  publicUrlExplicit: boolean;
  adminToken: string;
  scimToken: string | undefined;
  masterKey: Uint8Array;
  inactivityDays: number;
  auditCheckpointEvery: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  maxBodyBytes: number;
  requestTimeoutSeconds: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
  auditStreamMaxBackoffMs: number;
  jitMaxSeconds: number;
  scimManagesApproverGroups: boolean;
  corsOrigins: string[];
}

const ENV: Record<string, keyof ConfigInput> = {
  MANDATE_MODE: 'mode',
  MANDATE_HOST: 'host',
  MANDATE_PORT: 'port',
  MANDATE_DATA_DIR: 'dataDir',
  MANDATE_DATABASE_URL: 'databaseUrl',
  MANDATE_DATABASE_SCHEMA: 'databaseSchema',
  MANDATE_PUBLIC_URL: 'publicUrl',
  MANDATE_ADMIN_TOKEN: 'adminToken',
  MANDATE_SCIM_TOKEN: 'scimToken',
  MANDATE_MASTER_KEY: 'masterKey',
  MANDATE_INACTIVITY_DAYS: 'inactivityDays',
  MANDATE_AUDIT_CHECKPOINT_EVERY: 'auditCheckpointEvery',
  MANDATE_LOG_LEVEL: 'logLevel',
  MANDATE_MAX_BODY_BYTES: 'maxBodyBytes',
  MANDATE_REQUEST_TIMEOUT_SECONDS: 'requestTimeoutSeconds',
  MANDATE_MAX_CONNECTIONS: 'maxConnections',
  MANDATE_ADMIN_PORT: 'adminPort',
  MANDATE_ADMIN_HOST: 'adminHost',
  MANDATE_MAX_CONNECTIONS_PER_CLIENT: 'maxConnectionsPerClient',
  MANDATE_AUDIT_STREAM_MAX_BACKOFF_MS: 'auditStreamMaxBackoffMs',
  MANDATE_JIT_MAX_SECONDS: 'jitMaxSeconds',
  MANDATE_SCIM_MANAGES_APPROVER_GROUPS: 'scimManagesApproverGroups',
  MANDATE_CORS_ORIGINS: 'corsOrigins',
};

export function configFromEnvironment(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const input: Record<string, string> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') input[key] = value;
  }
  return input as ConfigInput;
}

export function configFromFile(path: string): ConfigInput {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ConfigInput;
  } catch (error) {
    throw new MandateError('CONFIG_INVALID', `cannot read configuration file ${path}: ${(error as Error).message}`);
  }
}

const MIN_SECRET_LENGTH = 32;

/** Validates and completes the configuration, or throws CONFIG_INVALID naming every bad setting. */
export function loadConfig(...sources: ConfigInput[]): Config {
  const merged = Object.assign({}, ...sources.map(withoutUndefined)) as ConfigInput;
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new MandateError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, 400, { problems });
  }
  const c = parsed.data;
  const dataDir = resolve(c.dataDir);
  const relaxed = c.mode !== 'production';
  const generated = relaxed ? localSecrets(dataDir) : undefined;
  const problems: string[] = [];

  const adminToken = c.adminToken ?? generated?.adminToken;
  if (!adminToken || adminToken.length < MIN_SECRET_LENGTH) {
    problems.push(`MANDATE_ADMIN_TOKEN must be set to at least ${MIN_SECRET_LENGTH} random characters`);
  }
  if (c.scimToken !== undefined && c.scimToken.length < MIN_SECRET_LENGTH) {
    problems.push(`MANDATE_SCIM_TOKEN must be at least ${MIN_SECRET_LENGTH} characters`);
  }
  let masterKey: Uint8Array | undefined;
  const masterKeyText = c.masterKey ?? generated?.masterKey;
  if (!masterKeyText) problems.push('MANDATE_MASTER_KEY must be set (32 random bytes, base64)');
  else {
    masterKey = Buffer.from(masterKeyText, 'base64');
    if (masterKey.length !== 32) problems.push('MANDATE_MASTER_KEY must decode to exactly 32 bytes');
  }
  const publicUrl = (c.publicUrl ?? `http://localhost:${c.port}`).replace(/\/+$/, '');
  if (!relaxed && !publicUrl.startsWith('https://')) {
    problems.push('MANDATE_PUBLIC_URL must be https:// in production (it is the OAuth issuer)');
  }
  if (problems.length > 0) {
    throw new MandateError('CONFIG_INVALID', `refusing to start: ${problems.join('; ')}`, 400, { problems });
  }
  return {
    mode: c.mode,
    host: c.host,
    adminPort: c.adminPort,
    adminHost: c.adminHost,
    port: c.port,
    dataDir,
    databaseUrl: c.databaseUrl,
    databaseSchema: c.databaseSchema,
    publicUrl,
    publicUrlExplicit: c.publicUrl !== undefined,
    adminToken: adminToken!,
    scimToken: c.scimToken ?? (relaxed ? generated?.scimToken : undefined),
    masterKey: masterKey!,
    inactivityDays: c.inactivityDays,
    auditCheckpointEvery: c.auditCheckpointEvery,
    logLevel: c.logLevel,
    maxBodyBytes: c.maxBodyBytes,
    requestTimeoutSeconds: c.requestTimeoutSeconds,
    maxConnections: c.maxConnections,
    maxConnectionsPerClient: c.maxConnectionsPerClient,
    auditStreamMaxBackoffMs: c.auditStreamMaxBackoffMs,
    jitMaxSeconds: c.jitMaxSeconds,
    scimManagesApproverGroups: c.scimManagesApproverGroups,
    corsOrigins: c.corsOrigins,
  };
}

function withoutUndefined(source: ConfigInput): Record<string, unknown> {
  return Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined));
}

interface LocalSecrets {
  adminToken: string;
  scimToken: string;
  masterKey: string;
}

/**
 * Development and demo secrets, generated once and kept (mode 0600) in the data directory so that a
 * restart keeps the same admin token and can still open what it sealed.
 */
function localSecrets(dataDir: string): LocalSecrets {
  const path = join(dataDir, 'secrets.json');
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as LocalSecrets;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secrets: LocalSecrets = {
    adminToken: `mdt_admin_${randomToken(32)}`,
    scimToken: `mdt_scim_${randomToken(32)}`,
    masterKey: Buffer.from(randomToken(32), 'base64url').subarray(0, 32).toString('base64'),
  };
  writeFileSync(path, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
