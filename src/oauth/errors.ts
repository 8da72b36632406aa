import { MandateError } from '../core/errors.ts';

/**
 * Coded failures of access-token verification at Mandate's resource servers. Callers (the MCP gateway,
 * Mandate's own APIs) branch on `code`; `oauthError` is the RFC 6750 §3.1 / RFC 9449 §7.1 error that goes
 * into the WWW-Authenticate challenge.
 */
export const TOKEN_ERROR_CODES = [
  'TOKEN_MISSING',
  'TOKEN_INVALID',
  'TOKEN_EXPIRED',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_REVOKED',
  'TOKEN_SCOPE_INSUFFICIENT',
  'TOKEN_BINDING_MISMATCH',
  'DPOP_PROOF_REQUIRED',
  'DPOP_PROOF_INVALID',
  'DPOP_NONCE_REQUIRED',
  'DPOP_REPLAY',
  'MTLS_CERTIFICATE_REQUIRED',
  'IDENTITY_SUSPENDED',
  'IDENTITY_DECOMMISSIONED',
  'VERIFIER_UNAVAILABLE',
] as const;

export type TokenErrorCode = (typeof TOKEN_ERROR_CODES)[number];

export type OAuthChallengeError = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | 'use_dpop_nonce';

const CHALLENGE: Record<TokenErrorCode, OAuthChallengeError> = {
  TOKEN_MISSING: 'invalid_request',
  TOKEN_INVALID: 'invalid_token',
  TOKEN_EXPIRED: 'invalid_token',
  TOKEN_AUDIENCE_MISMATCH: 'invalid_token',
  TOKEN_REVOKED: 'invalid_token',
  TOKEN_SCOPE_INSUFFICIENT: 'insufficient_scope',
  TOKEN_BINDING_MISMATCH: 'invalid_token',
  DPOP_PROOF_REQUIRED: 'invalid_token',
  DPOP_PROOF_INVALID: 'invalid_dpop_proof',
  DPOP_NONCE_REQUIRED: 'use_dpop_nonce',
  DPOP_REPLAY: 'invalid_dpop_proof',
  MTLS_CERTIFICATE_REQUIRED: 'invalid_token',
  IDENTITY_SUSPENDED: 'invalid_token',
  IDENTITY_DECOMMISSIONED: 'invalid_token',
  VERIFIER_UNAVAILABLE: 'invalid_token',
};

export class TokenError extends MandateError {
  override readonly code: TokenErrorCode;
  readonly oauthError: OAuthChallengeError;
  /** Set with DPOP_NONCE_REQUIRED / DPOP_PROOF_INVALID: the nonce to send back in the `DPoP-Nonce` header (RFC 9449 §9). */
  readonly dpopNonce: string | undefined;

  constructor(code: TokenErrorCode, message: string, extra: { dpopNonce?: string | undefined; details?: Record<string, unknown> } = {}) {
    // 403 only for insufficient scope (RFC 6750 §3.1); everything else is 401; fail-closed on outage is 503.
    super(code, message, code === 'TOKEN_SCOPE_INSUFFICIENT' ? 403 : code === 'VERIFIER_UNAVAILABLE' ? 503 : 401, extra.details);
    this.name = 'TokenError';
    this.code = code;
    this.oauthError = CHALLENGE[code];
    this.dpopNonce = extra.dpopNonce;
  }
}

export function isTokenError(value: unknown): value is TokenError {
  return value instanceof TokenError;
}

/**
 * The WWW-Authenticate header for a failed request: `Bearer` or `DPoP` scheme (RFC 9449 §7.1), the error
 * (RFC 6750 §3), and the RFC 9728 §5.1 `resource_metadata` pointer so MCP clients can discover the server.
 */
export function wwwAuthenticate(error: TokenError | undefined, options: { scheme?: 'Bearer' | 'DPoP'; resourceMetadataUrl?: string; scope?: string; algs?: string[] } = {}): string {
  const scheme = options.scheme ?? 'Bearer';
  const parts: string[] = [];
  if (error && error.code !== 'TOKEN_MISSING') {
    parts.push(`error="${error.oauthError}"`);
    // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E. The message can quote the caller's
    // own input (a token header's `alg`): a control character would make the header unwritable (Node's
    // writeHead throws) and a character above U+00FF the Response itself, so anything else becomes `?`.
    parts.push(`error_description="${error.message.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')}"`);
  }
  if (options.scope) parts.push(`scope="${options.scope}"`);
  if (options.resourceMetadataUrl) parts.push(`resource_metadata="${options.resourceMetadataUrl}"`);
  if (scheme === 'DPoP') parts.push(`algs="${(options.algs ?? ['ES256', 'EdDSA', 'RS256', 'PS256']).join(' ')}"`);
  return parts.length > 0 ? `${scheme} ${parts.join(', ')}` : scheme;
}
