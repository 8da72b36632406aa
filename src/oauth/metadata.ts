/**
 * RFC 9728 OAuth 2.0 Protected Resource Metadata, for any of Mandate's resource servers (its own API,
 * the MCP gateway). Served at `/.well-known/oauth-protected-resource<path>` (§3.1: the well-known segment
 * goes between host and path).
 */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  jwks_uri?: string;
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_signing_alg_values_supported?: string[];
  resource_name?: string;
  resource_documentation?: string;
  tls_client_certificate_bound_access_tokens?: boolean;
  dpop_signing_alg_values_supported?: string[];
  dpop_bound_access_tokens_required?: boolean;
}

export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

export function protectedResourceMetadata(
  resource: string,
  options: { issuer: string; scopes?: string[]; name?: string; documentation?: string; dpopRequired?: boolean; mtls?: boolean },
): ProtectedResourceMetadata {
  return {
    resource,
    authorization_servers: [options.issuer],
    jwks_uri: `${options.issuer}/oauth/jwks`,
    ...(options.scopes && { scopes_supported: options.scopes }),
    // §2: only the Authorization header; tokens in query strings leak into logs.
    bearer_methods_supported: ['header'],
    resource_signing_alg_values_supported: ['RS256'],
    ...(options.name && { resource_name: options.name }),
    ...(options.documentation && { resource_documentation: options.documentation }),
    tls_client_certificate_bound_access_tokens: options.mtls ?? false,
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    dpop_bound_access_tokens_required: options.dpopRequired ?? false,
  };
}

/** RFC 9728 §3.1: where a resource's metadata lives. `https://h/mcp` → `https://h/.well-known/oauth-protected-resource/mcp`. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  return `${url.origin}/.well-known/oauth-protected-resource${path}`;
}
