/**
 * Kysely's migrator asks whether its bookkeeping table exists by introspecting every schema in the
 * database (`has_schema_privilege` on each). When another schema is dropped while that query runs —
 * another Mandate deployment in the same database being removed, or in tests another file's schema —
 * PostgreSQL fails the whole query with `schema "<other>" does not exist`, although nothing is wrong
 * with ours. Such a failure is retried (the migration is transactional and runs under its lock, so a
 * retry starts clean); any other error, or one naming our own schema, is not.
 */
export async function retryWhenAnotherSchemaVanishes<T>(run: () => Promise<T>, ownSchema: string | undefined, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const vanished = /schema "([^"]+)" does not exist/.exec(error instanceof Error ? error.message : '')?.[1];
      if (vanished === undefined || vanished === ownSchema || attempt >= attempts) throw error;
    }
  }
}
