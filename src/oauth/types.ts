import type { X509Certificate } from 'node:crypto';

/** What a resource server knows about an incoming request, as the client sent it. */
export interface AccessTokenRequest {
  /** The `Authorization` header: `Bearer <token>` or `DPoP <token>`. */
  authorization: string | undefined;
  /** The `DPoP` header (RFC 9449 §4.1), when present. */
  dpop: string | undefined;
  /** HTTP method, e.g. `POST`. */
  method: string;
  /** The full URL the client called (scheme, host, path; query and fragment are ignored for DPoP `htu`). */
  url: string;
  /** The TLS client certificate of the connection (mTLS, RFC 8705), when there is one. */
  clientCertificate?: X509Certificate | string | undefined;
}

export interface VerifyAccessTokenOptions {
  /** The resource's identifier(s): the token's `aud` must contain one of them (RFC 8707, RFC 9068 §4). */
  audience: string | string[];
  /** Scopes the call needs; missing ones → TOKEN_SCOPE_INSUFFICIENT (403). */
  requiredScopes?: string[];
  /** Demand a fresh server nonce in DPoP proofs (RFC 9449 §9). Default: the server's setting. */
  requireDpopNonce?: boolean;
}

export interface TokenConfirmation {
  /** RFC 9449 §6.1: SHA-256 JWK thumbprint of the client's DPoP key. */
  jkt?: string;
  /** RFC 8705 §3.1: SHA-256 thumbprint of the client certificate. */
  'x5t#S256'?: string;
}

/** A verified access token, as Mandate's resource servers (and the MCP gateway) see it. */
export interface VerifiedAccessToken {
  /** `sub`: the human for delegated tokens, else the agent/workload identity (or client id). */
  subject: string;
  clientId: string;
  /** The agent or workload that presents the token (the current actor for delegated tokens), when known. */
  identityId: string | null;
  /** RFC 8693 §4.1 `act` chain, outermost (current actor) first; empty when nobody acts for someone else. */
  actChain: string[];
  /** The human the token acts for, when it was delegated by one. */
  userId: string | null;
  scopes: string[];
  cnf: TokenConfirmation | null;
  tokenId: string;
  audience: string[];
  expiresAt: Date;
  /** Every claim, for policy input. */
  claims: Record<string, unknown>;
}
