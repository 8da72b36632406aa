import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose';
import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import { MandateError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../store/index.ts';
import { storableId } from './adapter.ts';
import { safeFetchJson, type SafeFetchOptions } from './safe-fetch.ts';
import type { ReplayCache } from './state.ts';

export const FEDERATION_CHANGED = 'oauth.federation.changed';

const claimValue = z.union([z.string().max(500), z.number(), z.boolean()]);
export const federationRuleSchema = z
  .object({
    /** Every listed claim must equal the value; a string ending in `*` matches by prefix. */
    claims: z.record(z.string().min(1).max(100), claimValue).refine((c) => Object.keys(c).length > 0, 'a rule needs at least one claim'),
    identityId: z.string().min(1).max(64),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/)).max(100).default([]),
  })
  .strict();

export const federationIssuerSchema = z
  .object({
    issuer: z.url().max(500),
    jwksUrl: z.url().max(2000).optional(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(20) }).optional(),
    audience: z.string().min(1).max(500),
    rules: z.array(federationRuleSchema).min(1).max(100),
  })
  .strict()
  .refine((v) => Boolean(v.jwksUrl) !== Boolean(v.jwks), 'give exactly one of jwksUrl or jwks');

export type FederationIssuerInput = z.input<typeof federationIssuerSchema>;
export type FederationRule = z.output<typeof federationRuleSchema>;

export interface FederationIssuer {
  id: string;
  issuer: string;
  jwksUrl: string | null;
  jwks: JSONWebKeySet | null;
  audience: string;
  rules: FederationRule[];
  createdAt: string;
}

export function ruleMatches(rule: FederationRule, claims: Record<string, unknown>): boolean {
  return Object.entries(rule.claims).every(([name, expected]) => {
    const actual = claims[name];
    if (typeof expected === 'string' && expected.endsWith('*')) return typeof actual === 'string' && actual.startsWith(expected.slice(0, -1));
    return actual === expected;
  });
}

export interface FederatedIdentity {
  identityId: string;
  scopes: string[];
  issuer: string;
  externalSubject: string;
}

/**
 * Workload identity federation: JWTs from issuers an admin trusts (GitHub Actions, Kubernetes service
 * accounts, cloud workload identities) are traded for Mandate tokens, mapped by claim rules to a
 * registered workload. Remote JWKS are fetched safely and cached.
 */
export class FederationService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #replay: ReplayCache;
  readonly #fetch: SafeFetchOptions;
  readonly #jwksCache = new Map<string, { jwks: JSONWebKeySet; fetchedAt: number }>();
  /** Fetches under way, shared by everyone who needs the same keys meanwhile. */
  readonly #jwksFetches = new Map<string, Promise<JSONWebKeySet>>();
  /** The last failed fetch per URL, answered again for 10 s instead of fetching. */
  readonly #jwksFailures = new Map<string, { at: number; error: unknown }>();
  /** Bumped when issuers change: a fetch begun before leaves nothing behind in the caches. */
  #jwksGeneration = 0;

  constructor(store: Store, audit: AuditLog, replay: ReplayCache, fetchOptions: SafeFetchOptions) {
    this.#store = store;
    this.#audit = audit;
    this.#replay = replay;
    this.#fetch = fetchOptions;
    store.events.on(FEDERATION_CHANGED, () => {
      this.#jwksGeneration += 1;
      this.#jwksCache.clear();
      this.#jwksFailures.clear();
      this.#jwksFetches.clear();
    });
  }

  async create(input: FederationIssuerInput, actor: string): Promise<FederationIssuer> {
    const parsed = federationIssuerSchema.parse(input);
    if (parsed.jwksUrl && !this.#fetch.allowHttp && !parsed.jwksUrl.startsWith('https://')) throw new MandateError('FETCH_URL_INSECURE', 'jwksUrl must be https', 400);
    for (const rule of parsed.rules) {
      const identity = await this.#store.db.selectFrom('identities').select(['kind']).where('id', '=', rule.identityId).executeTakeFirst();
      if (!identity) throw new MandateError('IDENTITY_NOT_FOUND', `rule names unknown identity ${rule.identityId}`, 422);
    }
    const now = new Date().toISOString();
    const row = { id: newId('fed'), issuer: parsed.issuer, jwks_url: parsed.jwksUrl ?? null, jwks: parsed.jwks ? JSON.stringify(parsed.jwks) : null, audience: parsed.audience, rules: JSON.stringify(parsed.rules), created_at: now, updated_at: now };
    await this.#store.transaction(async (tx) => {
      const clash = await tx.db.selectFrom('oauth_federation_issuers').select('id').where('issuer', '=', parsed.issuer).executeTakeFirst();
      if (clash) throw new MandateError('FEDERATION_ISSUER_EXISTS', `issuer ${parsed.issuer} is already trusted`, 409, { id: clash.id });
      await tx.db.insertInto('oauth_federation_issuers').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'federation.issuer.create', target: row.id, outcome: 'success', details: { issuer: row.issuer, rules: parsed.rules.length } });
      tx.publish(FEDERATION_CHANGED, { id: row.id });
    });
    return this.#toIssuer(row);
  }

  async list(): Promise<FederationIssuer[]> {
    return (await this.#store.db.selectFrom('oauth_federation_issuers').selectAll().orderBy('id').execute()).map((r) => this.#toIssuer(r));
  }

  async remove(id: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const result = await tx.db.deleteFrom('oauth_federation_issuers').where('id', '=', id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) throw new MandateError('FEDERATION_ISSUER_NOT_FOUND', `issuer ${id} not found`, 404);
      await this.#audit.appendIn(tx, { actor, action: 'federation.issuer.delete', target: id, outcome: 'success' });
      tx.publish(FEDERATION_CHANGED, { id });
    });
  }

  /** Validates an external JWT and maps it to a workload; throws MandateError FEDERATION_* on refusal. */
  async resolve(assertion: string): Promise<FederatedIdentity> {
    let unverified: Record<string, unknown>;
    try {
      unverified = decodeJwt(assertion);
    } catch {
      throw new MandateError('FEDERATION_TOKEN_INVALID', 'the assertion is not a JWT', 400);
    }
    // An issuer with U+0000 cannot be stored, so none is trusted (and PostgreSQL would fail the query: a 500).
    const row = typeof unverified.iss === 'string' && storableId(unverified.iss) ? await this.#store.db.selectFrom('oauth_federation_issuers').selectAll().where('issuer', '=', unverified.iss.slice(0, 500)).executeTakeFirst() : undefined;
    if (!row) throw new MandateError('FEDERATION_ISSUER_UNTRUSTED', 'the assertion comes from an issuer Mandate does not trust', 400);
    const issuer = this.#toIssuer(row);
    let claims: Record<string, unknown>;
    try {
      const jwks = issuer.jwks ?? (await this.#remoteJwks(issuer.jwksUrl!, false));
      try {
        ({ payload: claims } = await jwtVerify(assertion, createLocalJWKSet(jwks), { issuer: issuer.issuer, audience: issuer.audience, algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'], requiredClaims: ['exp', 'iat', 'sub'], maxTokenAge: '1h' }));
      } catch (error) {
        // A key we have not seen: the issuer may have rotated. Refetch once (rate-limited by the cache age).
        if (!issuer.jwksUrl || (error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw error;
        const fresh = await this.#remoteJwks(issuer.jwksUrl, true);
        ({ payload: claims } = await jwtVerify(assertion, createLocalJWKSet(fresh), { issuer: issuer.issuer, audience: issuer.audience, algorithms: ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'], requiredClaims: ['exp', 'iat', 'sub'], maxTokenAge: '1h' }));
      }
    } catch (error) {
      if (error instanceof MandateError) throw error;
      throw new MandateError('FEDERATION_TOKEN_INVALID', `the assertion does not verify (${(error as { code?: string }).code ?? 'invalid'})`, 400);
    }
    // One use per assertion: by its `jti`, or, for issuers that send none, by the assertion itself
    // (otherwise a copied assertion could be exchanged again until it expires).
    const replayKey = typeof claims.jti === 'string' ? claims.jti : `sha256:${createHash('sha256').update(assertion).digest('base64url')}`;
    if (!(await this.#replay.claim(`federation:${issuer.id}:${replayKey}`, new Date(((claims.exp as number) + 60) * 1000)))) {
      throw new MandateError('FEDERATION_TOKEN_REPLAYED', 'the assertion was used before', 400);
    }
    const rule = issuer.rules.find((r) => ruleMatches(r, claims));
    if (!rule) throw new MandateError('FEDERATION_NO_RULE', 'no claim rule maps this assertion to a workload', 400, { issuer: issuer.issuer, sub: claims.sub });
    return { identityId: rule.identityId, scopes: rule.scopes, issuer: issuer.issuer, externalSubject: String(claims.sub) };
  }

  /**
   * The issuer's keys: cached 5 minutes, refetched for an unknown `kid` at most every 10 s. Anyone can
   * send an assertion naming a trusted issuer, so Mandate must not be made to fetch on every one:
   * concurrent callers share one fetch, and a failed fetch is not retried for 10 s.
   */
  async #remoteJwks(url: string, force: boolean): Promise<JSONWebKeySet> {
    const cached = this.#jwksCache.get(url);
    const age = cached ? Date.now() - cached.fetchedAt : Infinity;
    if (cached && (age < 300_000 && !(force && age > 10_000))) return cached.jwks;
    const failed = this.#jwksFailures.get(url);
    if (failed && Date.now() - failed.at < 10_000) throw failed.error;
    let fetching = this.#jwksFetches.get(url);
    if (!fetching) {
      fetching = this.#fetchJwks(url);
      this.#jwksFetches.set(url, fetching);
    }
    return fetching;
  }

  async #fetchJwks(url: string): Promise<JSONWebKeySet> {
    const generation = this.#jwksGeneration;
    const current = () => generation === this.#jwksGeneration;
    try {
      const body = (await safeFetchJson(url, this.#fetch)) as JSONWebKeySet;
      if (!body || !Array.isArray(body.keys)) throw new MandateError('FEDERATION_JWKS_INVALID', 'the remote JWKS has no keys', 502);
      if (current()) {
        this.#jwksCache.set(url, { jwks: body, fetchedAt: Date.now() });
        this.#jwksFailures.delete(url);
      }
      return body;
    } catch (error) {
      if (current()) this.#jwksFailures.set(url, { at: Date.now(), error });
      throw error;
    } finally {
      if (current()) this.#jwksFetches.delete(url);
    }
  }

  #toIssuer(row: { id: string; issuer: string; jwks_url: string | null; jwks: string | null; audience: string; rules: string; created_at: string }): FederationIssuer {
    return { id: row.id, issuer: row.issuer, jwksUrl: row.jwks_url, jwks: row.jwks ? (JSON.parse(row.jwks) as JSONWebKeySet) : null, audience: row.audience, rules: JSON.parse(row.rules) as FederationRule[], createdAt: row.created_at };
  }

  async audit(outcome: 'success' | 'deny', details: Record<string, unknown>): Promise<void> {
    await this.#audit.append({ actor: typeof details.identityId === 'string' ? `workload:${details.identityId}` : 'anonymous', action: 'token.federate', target: typeof details.identityId === 'string' ? details.identityId : null, outcome, details });
  }
}
