import { z } from 'zod';
import { MandateError } from '../core/errors.ts';

/** Hard ceiling on access-token lifetime: configuration cannot make tokens long-lived. */
export const MAX_ACCESS_TOKEN_SECONDS = 3600;

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

export const oauthConfigSchema = z
  .object({
    accessTokenSeconds: z.coerce.number().int().min(30).max(MAX_ACCESS_TOKEN_SECONDS).default(300),
    delegationMaxDepth: z.coerce.number().int().min(1).max(10).default(3),
    delegationDays: z.coerce.number().int().min(1).max(365).default(30),
    /** `off` (default), `token` (RFC 7591 §3 with an initial access token), `open`. */
    dynamicRegistration: z.enum(['off', 'token', 'open']).default('off'),
    initialAccessToken: z.string().min(32).optional(),
    /** Accept Client ID Metadata Documents (URL client ids, as the MCP authorization spec expects). */
    clientIdMetadataDocuments: bool.default(false),
    requireDpopNonce: bool.default(false),
    mtlsPort: z.coerce.number().int().min(0).max(65535).optional(),
    trustDomain: z.string().regex(/^[a-z0-9.-]{1,253}$/).optional(),
    certificateSeconds: z.coerce.number().int().min(60).max(86_400).default(3600),
    federationAllowPrivateNetworks: bool.default(false),
    loginMaxAttempts: z.coerce.number().int().min(1).max(1000).default(5),
    /** Signing keys older than this are rotated by the periodic job (the old one stays published). */
    keyRotationDays: z.coerce.number().int().min(1).max(3650).default(30),
  })
  .strict();

export type OAuthConfig = z.output<typeof oauthConfigSchema>;

const ENV: Record<string, keyof OAuthConfig> = {
  MANDATE_OAUTH_ACCESS_TOKEN_TTL: 'accessTokenSeconds',
  MANDATE_OAUTH_DELEGATION_MAX_DEPTH: 'delegationMaxDepth',
  MANDATE_OAUTH_DELEGATION_DAYS: 'delegationDays',
  MANDATE_OAUTH_DYNAMIC_REGISTRATION: 'dynamicRegistration',
  MANDATE_OAUTH_INITIAL_ACCESS_TOKEN: 'initialAccessToken',
  MANDATE_OAUTH_CLIENT_ID_METADATA_DOCUMENTS: 'clientIdMetadataDocuments',
  MANDATE_OAUTH_DPOP_NONCE: 'requireDpopNonce',
  MANDATE_MTLS_PORT: 'mtlsPort',
  MANDATE_TRUST_DOMAIN: 'trustDomain',
  MANDATE_CERTIFICATE_TTL: 'certificateSeconds',
  MANDATE_FEDERATION_ALLOW_PRIVATE_NETWORKS: 'federationAllowPrivateNetworks',
  MANDATE_LOGIN_MAX_ATTEMPTS: 'loginMaxAttempts',
  MANDATE_OAUTH_KEY_ROTATION_DAYS: 'keyRotationDays',
};

/** OAuth settings from MANDATE_OAUTH_* (and a few related) environment variables, validated; refuses bad ones by name. */
export function oauthConfigFrom(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof OAuthConfig, unknown>> = {}): OAuthConfig {
  const input: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = oauthConfigSchema.safeParse({ ...input, ...overrides });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new MandateError('CONFIG_INVALID', `invalid OAuth configuration: ${problems.join('; ')}`, 400, { problems });
  }
  if (parsed.data.dynamicRegistration === 'token' && !parsed.data.initialAccessToken) {
    throw new MandateError('CONFIG_INVALID', 'MANDATE_OAUTH_DYNAMIC_REGISTRATION=token needs MANDATE_OAUTH_INITIAL_ACCESS_TOKEN (32+ characters)');
  }
  return parsed.data;
}
