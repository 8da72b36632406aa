import type { Kysely, Migration } from 'kysely';

/** Template links (Cedar templates instantiated for a principal/resource) stored with each policy version. */
export const policyLinks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('policy_versions').addColumn('links', 'text', (c) => c.notNull().defaultTo('[]')).execute();
  },
};
