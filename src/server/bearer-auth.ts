import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';

/** Resolves a bearer token to an actor, or undefined when it is not one this authenticator knows. */
export type BearerAuthenticator = (token: string) => Promise<string | undefined> | string | undefined;

export interface BearerAuthOptions {
  /** Asked in order; the first actor wins. */
  authenticators: readonly BearerAuthenticator[];
  /**
   * RFC 6750 §2.1 makes the scheme case-insensitive (RFC 9110 §11.1). The admin API and AuthZEN have
   * always required `Bearer` exactly and SCIM accepts any case (identity providers differ); each surface
   * keeps what it answered so far.
   */
  schemeCaseInsensitive: boolean;
  /** The error to throw (with its `WWW-Authenticate` set on `c`); `presented` is whether a bearer token was there at all. */
  refuse: (c: Context<AppEnv>, presented: boolean) => Error;
}

const TOKEN = '([\\x21-\\x7e]{1,4096})';
const EXACT = new RegExp(`^Bearer ${TOKEN}$`);
const ANY_CASE = new RegExp(`^Bearer ${TOKEN}$`, 'i');

/** The token of an `Authorization: Bearer <token>` header (printable ASCII, at most 4096 characters), or undefined. */
export function bearerToken(header: string | undefined, schemeCaseInsensitive: boolean): string | undefined {
  return (schemeCaseInsensitive ? ANY_CASE : EXACT).exec(header ?? '')?.[1];
}

/** Authenticates the caller by bearer token and sets `actor`, or throws `refuse`'s error. */
export function bearerAuth(options: BearerAuthOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header('authorization'), options.schemeCaseInsensitive);
    let actor: string | undefined;
    if (token !== undefined) {
      for (const authenticate of options.authenticators) {
        actor = await authenticate(token);
        if (actor) break;
      }
    }
    if (!actor) throw options.refuse(c, token !== undefined);
    c.set('actor', actor);
    await next();
  };
}
