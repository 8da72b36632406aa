import { errors as oidcErrors } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { buildTokenResponse, checkDpopReplay, checkMtlsCert, validateDpop } from 'oidc-provider/lib/helpers/grants.js';
import type { AuditLog } from '../audit/index.ts';
import { TOKEN_EXCHANGE } from './clients.ts';
import type { OAuthConfig } from './config.ts';
import type { DelegationService } from './delegations.ts';
import { peerCertificate, resourceIsValid, type ClientInfo } from './provider.ts';
import { constantTimeEqual } from '../core/crypto.ts';
import { actChainOf, certificateThumbprint, CLAIM_IDENTITY, type AccessTokenVerifier } from './verifier.ts';

export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Ctx = any;

export interface ActClaim {
  sub: string;
  client_id?: string;
  act?: ActClaim;
}

export interface TokenExchangeDependencies {
  issuer: string;
  config: OAuthConfig;
  verifier: AccessTokenVerifier;
  delegations: DelegationService;
  audit: AuditLog;
  clientInfo(clientId: string): Promise<ClientInfo | undefined>;
  devMode: boolean;
  /** Federation: other subject-token types (external JWTs) are handed over here. */
  federated?: (provider: Provider, ctx: Ctx) => Promise<boolean>;
}

export const TOKEN_EXCHANGE_PARAMS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'scope', 'audience', 'resource'];

/** Scopes granted on exchange: what was asked ∩ what the user delegated ∩ what the agent may have ∩ what the subject token holds. */
export function intersectScopes(requested: string[] | undefined, ...limits: string[][]): string[] {
  let result = requested ?? limits[0] ?? [];
  for (const limit of limits) result = result.filter((s) => limit.includes(s));
  return [...new Set(result)];
}

/**
 * RFC 8693 token exchange for delegation: an agent presents a user's Mandate token (`subject_token`) and
 * its own (`actor_token`) and receives a token with `sub` = the user and `act` = the agent, nesting the
 * earlier actors (§4.1). Requires a live delegation grant from the user to the agent; the chain depth is
 * capped; every exchange, granted or refused, is audited with the whole chain.
 */
export function tokenExchangeGrant(deps: TokenExchangeDependencies) {
  return async function handleTokenExchange(provider: Provider, ctx: Ctx): Promise<void> {
    const params = ctx.oidc.params as Record<string, string | undefined>;
    const client = ctx.oidc.client;
    const audit = (outcome: 'success' | 'deny', details: Record<string, unknown>) =>
      deps.audit.append({ actor: `client:${client.clientId}`, action: 'token.exchange', target: typeof details.subject === 'string' ? details.subject : null, outcome, details });
    const deny = async (ErrorClass: Ctx, message: string, details: Record<string, unknown> = {}): Promise<never> => {
      await audit('deny', { reason: message, ...details });
      throw new ErrorClass(message);
    };

    if (!params.subject_token || !params.subject_token_type) await deny(oidcErrors.InvalidRequest, 'subject_token and subject_token_type are required');
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      if (deps.federated && (await deps.federated(provider, ctx))) return;
      await deny(oidcErrors.InvalidRequest, 'unsupported subject_token_type');
    }
    if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) await deny(oidcErrors.InvalidRequest, 'only access tokens can be requested');
    if (!params.actor_token || params.actor_token_type !== ACCESS_TOKEN_TYPE) await deny(oidcErrors.InvalidRequest, 'delegation needs actor_token of type access_token (RFC 8693 §2.1)');

    const info = await deps.clientInfo(client.clientId);
    if (!info?.identityId) await deny(oidcErrors.UnauthorizedClient, 'only clients of registered agents and workloads may exchange tokens');
    const actorId = info!.identityId!;

    let subject: Record<string, unknown>;
    let actor: Record<string, unknown>;
    try {
      subject = await deps.verifier.inspect(params.subject_token!);
    } catch (error) {
      return deny(oidcErrors.InvalidGrant, `subject_token is not valid (${(error as { code?: string }).code ?? 'invalid'})`);
    }
    try {
      actor = await deps.verifier.inspect(params.actor_token!);
    } catch (error) {
      return deny(oidcErrors.InvalidGrant, `actor_token is not valid (${(error as { code?: string }).code ?? 'invalid'})`);
    }
    // The actor token must be the calling agent's own: a client cannot borrow another agent's token.
    if (actor.client_id !== client.clientId || actor[CLAIM_IDENTITY] !== actorId) await deny(oidcErrors.InvalidGrant, 'actor_token was not issued to the calling client');
    const aud = Array.isArray(subject.aud) ? subject.aud : [subject.aud];
    if (!aud.includes(deps.issuer)) await deny(oidcErrors.InvalidGrant, 'subject_token was not issued for exchange at Mandate (its audience must be the issuer)');
    const userId = String(subject.sub);
    if (!userId.startsWith('hum_')) await deny(oidcErrors.InvalidGrant, 'subject_token does not represent a human');
    // A sender-constrained subject token is only usable by whoever holds its key or certificate
    // (RFC 9449 §1, RFC 8705 §3): the exchange must prove possession, or another agent holding its own
    // delegation from the same user could trade a stolen token for a fresh one.
    const subjectCnf = (subject.cnf && typeof subject.cnf === 'object' ? subject.cnf : {}) as { jkt?: unknown; 'x5t#S256'?: unknown };
    if (typeof subjectCnf.jkt === 'string') {
      const proof = await validateDpop(provider, ctx);
      if (!proof || !constantTimeEqual(proof.thumbprint, subjectCnf.jkt)) await deny(oidcErrors.InvalidGrant, 'subject_token is DPoP-bound: the exchange needs a DPoP proof made with the same key');
    }
    if (typeof subjectCnf['x5t#S256'] === 'string') {
      const certificate = peerCertificate(ctx);
      if (!certificate || !constantTimeEqual(certificateThumbprint(certificate), subjectCnf['x5t#S256'])) await deny(oidcErrors.InvalidGrant, 'subject_token is certificate-bound: the exchange must come over mutual TLS with that certificate');
    }

    const priorChain = actChainOf(subject.act);
    const chain = [actorId, ...priorChain];
    const detail = { subject: userId, actor: actorId, chain };
    if (priorChain.includes(actorId)) await deny(oidcErrors.InvalidGrant, 'the actor already appears in the delegation chain', detail);
    if (chain.length > deps.config.delegationMaxDepth) await deny(oidcErrors.InvalidGrant, `delegation chain deeper than ${deps.config.delegationMaxDepth}`, detail);

    const delegated = await deps.delegations.delegatedScopes(userId, actorId);
    if (delegated.length === 0) await deny(oidcErrors.InvalidGrant, 'the actor is not allowed to act for the subject (no delegation grant)', detail);
    const requested = params.scope ? params.scope.split(' ').filter(Boolean) : undefined;
    const subjectScopes = typeof subject.scope === 'string' ? subject.scope.split(' ') : [];
    const granted = intersectScopes(requested, delegated, info!.scopes, subjectScopes);
    if (granted.length === 0) await deny(oidcErrors.InvalidScope, 'no scope is left after intersecting request, delegation, agent and subject token', { ...detail, requested, delegated, allowed: info!.scopes, subjectScopes });

    const resource = params.resource ?? params.audience ?? deps.issuer;
    if (Array.isArray(resource) || !resourceIsValid(resource, deps.devMode)) await deny(oidcErrors.InvalidTarget, 'one valid resource is required');

    const act: ActClaim = { sub: actorId, client_id: client.clientId, ...(subject.act ? { act: subject.act as ActClaim } : {}) };
    ctx.mandateAct = act;

    const at = new provider.AccessToken({ accountId: userId, client, gty: 'token_exchange', scope: granted.join(' ') });
    at.resourceServer = { audience: resource, scope: granted.join(' '), accessTokenFormat: 'jwt', accessTokenTTL: deps.config.accessTokenSeconds, jwt: { sign: { alg: 'RS256' } } };
    const cert = checkMtlsCert(provider, ctx);
    if (cert) at.setThumbprint('x5t', cert);
    const dPoP = await validateDpop(provider, ctx);
    if (dPoP) {
      await checkDpopReplay(provider, ctx, dPoP, client.clientId);
      at.setThumbprint('jkt', dPoP.thumbprint);
    } else if (client.dpopBoundAccessTokens) {
      await deny(oidcErrors.InvalidGrant, 'DPoP proof JWT not provided');
    }
    ctx.oidc.entity('AccessToken', at);
    const value = await at.save();
    await audit('success', { ...detail, scopes: granted, resource, jti: at.jti });
    ctx.body = buildTokenResponse(provider, { accessToken: value, expiresIn: at.expiration, scope: granted.join(' '), tokenType: at.tokenType, issuedTokenType: ACCESS_TOKEN_TYPE });
  };
}

export { TOKEN_EXCHANGE };
