import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { randomToken } from './crypto.ts';
import { MandateError } from './errors.ts';
import { SETTINGS, type SettingKey } from './settings.ts';

/**
 * Mandate's configuration, validated once at start. Sources, later ones winning: defaults, a JSON file
 * (`--config` / MANDATE_CONFIG), environment (MANDATE_*), command-line flags.
 *
 * `production` refuses to start with anything insecure; `dev` and `demo` generate missing secrets and
 * keep them in the data directory so a restart finds the same ones.
 */
/** An origin as browsers send it in `Origin`: scheme, host and an optional port, nothing else. */
export const configSchema = z.object(Object.fromEntries(Object.entries(SETTINGS).map(([key, s]) => [key, s.schema])) as { [K in SettingKey]: (typeof SETTINGS)[K]['schema'] }).strict();

export type ConfigInput = z.input<typeof configSchema>;

type Parsed = z.output<typeof configSchema>;

/**
 * The configuration as the program reads it: every setting as validated (inferred from SETTINGS),
 * except those `loadConfig` completes — the public URL resolved, the secrets generated in dev, the
 * master key decoded.
 */
export type Config = { [K in Exclude<SettingKey, 'publicUrl' | 'adminToken' | 'masterKey' | 'adminPort' | 'databaseUrl' | 'databaseSchema' | 'scimToken'>]: Parsed[K] } & {
  adminPort: number | undefined;
  databaseUrl: string | undefined;
  databaseSchema: string | undefined;
  publicUrl: string;
  /** False when publicUrl was derived from the port; a server on port 0 then fills in the real one. */
  publicUrlExplicit: boolean;
  adminToken: string;
  scimToken: string | undefined;
  masterKey: Uint8Array;
};

const ENV = Object.entries(SETTINGS).map(([key, s]) => [s.env, key] as const);

export function configFromEnvironment(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const input: Record<string, string> = {};
  for (const [name, key] of ENV) {
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
  // Every validated setting as it is, then what loadConfig completed (the same key always wins here).
  return {
    ...c,
    dataDir,
    adminPort: c.adminPort,
    databaseUrl: c.databaseUrl,
    databaseSchema: c.databaseSchema,
    publicUrl,
    publicUrlExplicit: c.publicUrl !== undefined,
    adminToken: adminToken!,
    scimToken: c.scimToken ?? (relaxed ? generated?.scimToken : undefined),
    masterKey: masterKey!,
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
