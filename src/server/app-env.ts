/** Hono variables set by Mandate's middleware. */
export interface AppEnv {
  Variables: {
    /** Who is calling, as written into the audit chain: `admin`, `scim`, `client:<id>`, … */
    actor: string;
  };
}
