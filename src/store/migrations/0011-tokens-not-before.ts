import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `identities.tokens_not_before`: the instant (ISO 8601, milliseconds) before which no access token of
 * the identity is accepted any more. Suspension and decommissioning set it (see IdentityService), so a
 * resume does not bring back the tokens issued before the suspension. Identities that are suspended or
 * decommissioned when this migration runs get the migration's instant: their tokens from before it
 * stay dead after a resume too.
 */
export const tokensNotBefore: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('identities').addColumn('tokens_not_before', 'text').execute();
    await sql`update identities set tokens_not_before = ${new Date().toISOString()} where status <> 'active'`.execute(db);
  },
};
