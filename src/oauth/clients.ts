import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import { randomToken, sha256Hex } from '../core/crypto.ts';
import { MandateError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { IdentityService } from '../identity/index.ts';
import type { Store } from '../store/index.ts';
import { CLIENT_CHANGED } from './adapter.ts';

export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/**
 * The scope of a human's self-service delegation endpoints (`/oauth/delegations`). Reserved for clients
 * that belong to no agent or workload: an agent's client may hold a token *for* the user (authorization
 * code flow), and that token must never let the agent list or revoke the user's grants to other agents.
 */
export const DELEGATIONS_SCOPE = 'mandate:delegations';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/, 'a scope is printable ASCII without spaces, quotes or backslashes');
const jwk = z.record(z.string().max(64), z.unknown());

export const clientCreateSchema = z
  .object({
    auth: z.enum(CLIENT_AUTH_METHODS),
    jwks: z.object({ keys: z.array(jwk).min(1).max(10) }).strict().optional(),
    scopes: z.array(scope).max(100).optional(),
    /** For agents that ask humans for consent (authorization code + PKCE). */
    redirectUris: z.array(z.url().max(2000)).max(10).optional(),
    /** Require DPoP-bound tokens (RFC 9449 §5.2 `dpop_bound_access_tokens`). */
    dpop: z.boolean().optional(),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.auth === 'private_key_jwt' || body.auth === 'self_signed_tls_client_auth') && !body.jwks) {
      ctx.addIssue({ code: 'custom', path: ['jwks'], message: `${body.auth} needs jwks with the client's public key${body.auth === 'self_signed_tls_client_auth' ? ' (x5c)' : ''}` });
    }
    for (const key of body.jwks?.keys ?? []) {
      if ('d' in key || 'k' in key || 'p' in key) ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'jwks must hold public keys only' });
    }
  });

export type ClientCreate = z.infer<typeof clientCreateSchema>;

export interface CreatedClient {
  client_id: string;
  /** Shown once, stored only as a hash. */
  client_secret?: string;
  identity_id: string;
  token_endpoint_auth_method: ClientAuthMethod;
  scopes: string[];
  /** For tls_client_auth: the SAN URI the client certificate must carry (issued by Mandate's CA). */
  tls_client_auth_san_uri?: string;
}

export interface ClientSummary {
  client_id: string;
  identity_id: string | null;
  token_endpoint_auth_method: string;
  scopes: string[];
  created_at: string;
  disabled_at: string | null;
}

/** Client secrets are 256 random bits, so a fast hash resists guessing as well as a slow one would. */
export function hashClientSecret(secret: string): string {
  return `sha256$${sha256Hex(secret)}`;
}

export function spiffeId(trustDomain: string, kind: 'agent' | 'workload', id: string): string {
  return `spiffe://${trustDomain}/${kind}/${id}`;
}

/** OAuth clients of registered agents and workloads: the only way a non-human gets tokens. */
export class ClientService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #identity: IdentityService;
  readonly #trustDomain: string;

  constructor(store: Store, audit: AuditLog, identity: IdentityService, options: { trustDomain: string }) {
    this.#store = store;
    this.#audit = audit;
    this.#identity = identity;
    this.#trustDomain = options.trustDomain;
  }

  async create(kind: 'agent' | 'workload', identityId: string, input: ClientCreate, actor: string): Promise<CreatedClient> {
    if (input.scopes?.includes(DELEGATIONS_SCOPE)) throw new MandateError('CLIENT_SCOPE_RESERVED', `${DELEGATIONS_SCOPE} is for the user's own clients, never an agent's or workload's`, 400, { scope: DELEGATIONS_SCOPE });
    const identity = await this.#identity.getIdentity(identityId, kind);
    if (identity.status !== 'active') throw new MandateError('IDENTITY_NOT_ACTIVE', `${kind} ${identityId} is ${identity.status}: it gets no credentials`, 409);
    const clientId = newId('cli');
    const secret = input.auth === 'client_secret_basic' ? `mcs_${randomToken(32)}` : undefined;
    const scopes = [...new Set(input.scopes ?? [])];
    const grantTypes = ['client_credentials', TOKEN_EXCHANGE];
    if (input.redirectUris?.length) grantTypes.push('authorization_code', 'refresh_token');
    const san = input.auth === 'tls_client_auth' ? spiffeId(this.#trustDomain, kind, identityId) : undefined;
    const metadata: Record<string, unknown> = {
      client_id: clientId,
      client_name: input.name ?? identity.name,
      token_endpoint_auth_method: input.auth,
      grant_types: grantTypes,
      response_types: input.redirectUris?.length ? ['code'] : [],
      redirect_uris: input.redirectUris ?? [],
      ...(secret && { client_secret: hashClientSecret(secret) }),
      ...(input.jwks && { jwks: input.jwks }),
      ...(san && { tls_client_auth_san_uri: san }),
      ...(input.auth.includes('tls') && { tls_client_certificate_bound_access_tokens: true }),
      ...(input.dpop && { dpop_bound_access_tokens: true }),
    };
    const now = new Date().toISOString();
    await this.#store.transaction(async (tx) => {
      await tx.db
        .insertInto('oauth_clients')
        .values({
          client_id: clientId,
          identity_id: identityId,
          auth_method: input.auth,
          metadata: JSON.stringify(metadata),
          secret_hash: secret ? hashClientSecret(secret) : null,
          scopes: scopes.join(' '),
          created_by: actor,
          created_at: now,
          disabled_at: null,
        })
        .execute();
      await this.#audit.appendIn(tx, { actor, action: 'oauth.client.create', target: clientId, outcome: 'success', details: { identityId, kind, auth: input.auth, scopes } });
      tx.publish(CLIENT_CHANGED, { clientId });
    });
    return {
      client_id: clientId,
      ...(secret && { client_secret: secret }),
      identity_id: identityId,
      token_endpoint_auth_method: input.auth,
      scopes,
      ...(san && { tls_client_auth_san_uri: san }),
    };
  }

  async list(identityId: string): Promise<ClientSummary[]> {
    const rows = await this.#store.db.selectFrom('oauth_clients').selectAll().where('identity_id', '=', identityId).orderBy('client_id').execute();
    return rows.map((r) => ({ client_id: r.client_id, identity_id: r.identity_id, token_endpoint_auth_method: r.auth_method, scopes: r.scopes.split(' ').filter(Boolean), created_at: r.created_at, disabled_at: r.disabled_at }));
  }

  async disable(clientId: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const row = await tx.db.selectFrom('oauth_clients').select(['client_id', 'disabled_at']).where('client_id', '=', clientId).executeTakeFirst();
      if (!row) throw new MandateError('CLIENT_NOT_FOUND', `client ${clientId} not found`, 404);
      await tx.db.updateTable('oauth_clients').set({ disabled_at: new Date().toISOString() }).where('client_id', '=', clientId).execute();
      await this.#audit.appendIn(tx, { actor, action: 'oauth.client.disable', target: clientId, outcome: 'success' });
      tx.publish(CLIENT_CHANGED, { clientId });
    });
  }

  /**
   * Who a client belongs to, disabled or not (undefined when it is not in the registry, e.g. a Client ID
   * Metadata Document client). Uncached: for decisions that must see the registry as it is now.
   */
  async holder(clientId: string): Promise<{ identityId: string | null; disabled: boolean } | undefined> {
    if (clientId.length > 2000) return undefined;
    const row = await this.#store.db.selectFrom('oauth_clients').select(['identity_id', 'disabled_at']).where('client_id', '=', clientId).executeTakeFirst();
    return row ? { identityId: row.identity_id, disabled: row.disabled_at !== null } : undefined;
  }

  /** Allowed scopes and identity of a client (cached by callers). */
  async describe(clientId: string): Promise<{ identityId: string | null; scopes: string[]; kind: 'agent' | 'workload' | null } | undefined> {
    const row = await this.#store.db
      .selectFrom('oauth_clients')
      .leftJoin('identities', 'identities.id', 'oauth_clients.identity_id')
      .select(['oauth_clients.identity_id', 'oauth_clients.scopes', 'identities.kind', 'oauth_clients.disabled_at'])
      .where('oauth_clients.client_id', '=', clientId)
      .executeTakeFirst();
    if (!row || row.disabled_at) return undefined;
    return { identityId: row.identity_id, scopes: row.scopes.split(' ').filter(Boolean), kind: row.kind ?? null };
  }
}
