/**
 * Every PostgreSQL advisory lock Mandate takes, in one place: the first key of `pg_advisory_*lock(a, b)`
 * names what the lock serialises (the second is the schema, and optionally a narrower key; see
 * advisory-lock.ts). Two purposes sharing a number would serialise each other, or worse, one would
 * think it holds the other's lock: a new lock gets a new number here, never at its call site.
 */
export const LOCKS = {
  /** Applying migrations (session-level, across their transactions). */
  migrations: 7_261_001,
  /** Reading the last audit hash and appending after it: one chain across replicas. */
  auditChain: 7_261_002,
  /** A grant's separation-of-duties check and its insert, per principal. */
  grants: 7_261_007,
  /** An entity import's cycle check and its write. */
  entityImports: 7_261_011,
  /** Creating or rotating the OAuth signing keys. */
  signingKeys: 7_261_040,
  /** Creating the internal CA's root. */
  certificateAuthority: 7_261_041,
} as const satisfies Record<string, number>;
