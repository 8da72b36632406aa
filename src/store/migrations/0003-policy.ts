import type { Kysely, Migration } from 'kysely';

export const policy: Migration = {
  async up(db: Kysely<unknown>) {
    // Every policy set ever applied stays here: any previous version can be restored, and a decision in
    // the audit chain names the version that made it.
    await db.schema
      .createTable('policy_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('cedar', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('active', 'integer', (c) => c.notNull())
      .addColumn('note', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    // Entities imported for applications that use Mandate as their PDP (Cedar entity JSON, one row each).
    await db.schema
      .createTable('policy_entities')
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('json', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('policy_entities_pk', ['type', 'id'])
      .execute();
  },
};
