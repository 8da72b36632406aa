import type { Kysely, Migration } from 'kysely';

/**
 * OAuth authorization server, delegation, federation, internal CA and human credentials.
 * Times are ISO-8601 text like the rest of the schema; `expires_at` columns let jobs prune.
 */
export const oauth: Migration = {
  async up(db: Kysely<unknown>) {
    // oidc-provider's artifacts (interactions, sessions, grants, codes, refresh tokens, replay markers).
    await db.schema
      .createTable('oauth_payloads')
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text')
      .addColumn('user_code', 'text')
      .addColumn('uid', 'text')
      .addColumn('expires_at', 'text')
      .addColumn('consumed_at', 'text')
      .addPrimaryKeyConstraint('oauth_payloads_pk', ['model', 'id'])
      .execute();
    await db.schema.createIndex('oauth_payloads_grant').on('oauth_payloads').column('grant_id').execute();
    await db.schema.createIndex('oauth_payloads_uid').on('oauth_payloads').column('uid').execute();
    await db.schema.createIndex('oauth_payloads_expires').on('oauth_payloads').column('expires_at').execute();

    // Clients of agents and workloads (and registered MCP clients). Secrets only as hashes.
    await db.schema
      .createTable('oauth_clients')
      .addColumn('client_id', 'text', (c) => c.primaryKey())
      .addColumn('identity_id', 'text')
      .addColumn('auth_method', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text')
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('disabled_at', 'text')
      .execute();
    await db.schema.createIndex('oauth_clients_identity').on('oauth_clients').column('identity_id').execute();

    // Revoked access tokens (JWTs cannot be recalled: resource servers check this list), until they expire.
    await db.schema
      .createTable('oauth_revocations')
      .addColumn('jti', 'text', (c) => c.primaryKey())
      .addColumn('client_id', 'text')
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();

    // One-time values seen by any replica (DPoP proof jti, client assertion jti, federated JWT jti).
    await db.schema
      .createTable('oauth_replay')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('oauth_replay_expires').on('oauth_replay').column('expires_at').execute();

    // A human's delegation of scopes to an agent or workload (RFC 8693 token exchange draws on it).
    await db.schema
      .createTable('oauth_delegations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('human_id', 'text', (c) => c.notNull().references('humans.id'))
      .addColumn('identity_id', 'text', (c) => c.notNull().references('identities.id'))
      .addColumn('client_id', 'text')
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('oauth_delegations_pair').on('oauth_delegations').columns(['human_id', 'identity_id']).execute();

    // Workload identity federation: external issuers whose JWTs may be exchanged for Mandate tokens.
    await db.schema
      .createTable('oauth_federation_issuers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('issuer', 'text', (c) => c.notNull().unique())
      .addColumn('jwks_url', 'text')
      .addColumn('jwks', 'text')
      .addColumn('audience', 'text', (c) => c.notNull())
      .addColumn('rules', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    // Certificates issued by the internal CA (the CA's own key lives in `keys`).
    await db.schema
      .createTable('pki_certificates')
      .addColumn('serial', 'text', (c) => c.primaryKey())
      .addColumn('identity_id', 'text', (c) => c.notNull())
      .addColumn('spiffe_id', 'text', (c) => c.notNull())
      .addColumn('thumbprint', 'text', (c) => c.notNull())
      .addColumn('not_before', 'text', (c) => c.notNull())
      .addColumn('not_after', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('pki_certificates_identity').on('pki_certificates').column('identity_id').execute();

    // Human sign-in credentials: argon2id password hash, sealed TOTP secret.
    await db.schema
      .createTable('human_credentials')
      .addColumn('human_id', 'text', (c) => c.primaryKey().references('humans.id'))
      .addColumn('password_hash', 'text')
      .addColumn('totp_sealed', 'text')
      .addColumn('totp_confirmed', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('totp_last_step', 'bigint')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
};
