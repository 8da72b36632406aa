/**
 * Mandate's OAuth surface. Resource servers (the MCP gateway, Mandate's own APIs) use
 * `OAuthService.verifyAccessToken` (via `services.oauth`) and `protectedResourceMetadata`; see docs/oauth.md.
 */
export { OAuthService, type OAuthServiceDependencies, type GrantRegistration } from './service.ts';
export type { AccessTokenRequest, VerifyAccessTokenOptions, VerifiedAccessToken, TokenConfirmation } from './types.ts';
export { TokenError, isTokenError, wwwAuthenticate, TOKEN_ERROR_CODES, type TokenErrorCode, type OAuthChallengeError } from './errors.ts';
export { protectedResourceMetadata, protectedResourceMetadataUrl, DPOP_ALGORITHMS, type ProtectedResourceMetadata } from './metadata.ts';
export { AccessTokenVerifier, actChainOf, certificateThumbprint, ACCESS_TOKEN_ALGORITHMS, CLAIM_IDENTITY } from './verifier.ts';
export { DpopNonces, verifyDpopProof, normalizeHtu } from './dpop.ts';
export { ClientService, clientCreateSchema, CLIENT_AUTH_METHODS, DELEGATIONS_SCOPE, spiffeId, type ClientCreate, type CreatedClient, type ClientAuthMethod } from './clients.ts';
export { oauthConfigFrom, MAX_ACCESS_TOKEN_SECONDS, type OAuthConfig } from './config.ts';
export { OAUTH_ROUTES, peerCertificate } from './provider.ts';
export { seedOAuthDemo } from './demo.ts';
