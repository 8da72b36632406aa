import type { AccessTokenRequest, VerifiedAccessToken, VerifyAccessTokenOptions } from '../oauth/index.ts';
import { TokenError } from '../oauth/index.ts';
import type { AgentAuthenticator } from './proxy.ts';

/**
 * Agent authentication at /mcp through Mandate's own OAuth resource-server verifier. Only access tokens
 * Mandate issued for this gateway resource pass (audience-bound, DPoP/mTLS sender constraints honoured);
 * the admin token is not a JWT and never authenticates an agent here.
 */
export function oauthAuthenticator(verifier: { verifyAccessToken(request: AccessTokenRequest, options: VerifyAccessTokenOptions): Promise<VerifiedAccessToken> }): AgentAuthenticator {
  return async (request, options) => {
    const token = await verifier.verifyAccessToken({ authorization: request.authorization, dpop: request.dpop, method: request.method, url: request.url, clientCertificate: request.clientCertificate }, { audience: options.audience, requiredScopes: options.requiredScopes });
    if (!token.identityId) {
      // A token without an agent or workload behind it cannot be governed (no owner, no kill switch).
      throw new TokenError('TOKEN_INVALID', 'the access token names no agent or workload identity');
    }
    return { identityId: token.identityId, clientId: token.clientId, userId: token.userId, chain: token.actChain, scopes: token.scopes, tokenId: token.tokenId };
  };
}
