import { sql, type Kysely, type Migration } from 'kysely';

/**
 * SCIM looks users up by `userName` and groups by `displayName` ignoring case (RFC 7643 §4.1.1,
 * caseExact false) when the exact value misses: without these indexes every such lookup scanned the
 * table, once per branch of an `or` filter. Both dialects index an expression and use the index for
 * the same expression in a query.
 */
export const scimLookupIndexes: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create index if not exists humans_user_name_lower on humans (lower(user_name))`.execute(db);
    await sql`create index if not exists groups_display_name_lower on groups (lower(display_name))`.execute(db);
  },
};
