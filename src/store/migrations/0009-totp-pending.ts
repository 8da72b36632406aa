import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A TOTP secret being enrolled is kept apart from the confirmed one, so re-enrolment leaves the second
 * factor on until the new secret is confirmed. Enrolments still unconfirmed move to the new column.
 */
export const totpPending: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('human_credentials').addColumn('totp_pending_sealed', 'text').execute();
    await sql`update human_credentials set totp_pending_sealed = totp_sealed, totp_sealed = null where totp_confirmed = 0 and totp_sealed is not null`.execute(db);
  },
};
