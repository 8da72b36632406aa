/**
 * Every error code Mandate answers with, its default HTTP status and a short title (what the table in
 * docs/api.md shows; `npm run docs:errors` writes it). A code is added here before it is thrown:
 * `MandateError` only takes a code this catalog has, so callers may branch on `code` knowing the set is
 * closed. A code keeps its status wherever it is thrown; the few that deliberately answer another status
 * at one call site say so there (src/core/error-catalog.test.ts lists them).
 */
export const ERRORS = {
  // Requests and the HTTP layer
  AUTH_FORBIDDEN: { status: 403, title: 'The caller may not do this' },
  AUTH_REQUIRED: { status: 401, title: 'A valid bearer token is required' },
  CONFLICT: { status: 409, title: 'The resource conflicts with an existing one' },
  CSRF_REJECTED: { status: 403, title: 'A cross-site form post was refused' },
  HEADERS_TOO_LARGE: { status: 431, title: 'The request headers are too large' },
  INTERNAL: { status: 500, title: 'Internal error' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'The method is not allowed here' },
  NOT_FOUND: { status: 404, title: 'No such route' },
  REFERENCE_INVALID: { status: 422, title: 'A referenced resource does not exist' },
  REQUEST_ABORTED: { status: 400, title: 'The client closed the request before its body arrived' },
  REQUEST_CONTENT_TYPE: { status: 415, title: 'The body has an unsupported content type' },
  REQUEST_INVALID: { status: 400, title: 'The request does not match its schema' },
  REQUEST_JSON_INVALID: { status: 400, title: 'The body is not valid JSON' },
  REQUEST_MALFORMED: { status: 400, title: 'The request is not valid HTTP/1.1' },
  REQUEST_PATH_INVALID: { status: 400, title: 'The path is malformed' },
  REQUEST_QUERY_INVALID: { status: 400, title: 'The query is invalid' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time' },
  REQUEST_TOO_DEEP: { status: 400, title: 'The body nests too deeply' },
  REQUEST_TOO_LARGE: { status: 413, title: 'The body is too large' },

  // Store, configuration, crypto
  CONFIG_INVALID: { status: 400, title: 'The configuration is invalid' },
  CRYPTO_KEY_INVALID: { status: 500, title: 'An encryption key is not 32 bytes' },
  CRYPTO_SEALED_INVALID: { status: 500, title: 'A sealed value has an unknown format' },
  STORE_MIGRATION_FAILED: { status: 500, title: 'A database migration failed' },
  STORE_UNAVAILABLE: { status: 503, title: 'The database is unreachable; retry shortly' },

  // Identity: humans, groups, agents and workloads
  AGENT_NOT_FOUND: { status: 404, title: 'No such agent' },
  GROUP_EXISTS: { status: 409, title: 'A group with this name exists' },
  GROUP_NOT_FOUND: { status: 404, title: 'No such group' },
  HANDOVER_CLOSED: { status: 409, title: 'The handover is already resolved' },
  HANDOVER_NOT_FOUND: { status: 404, title: 'No such handover' },
  HANDOVER_TARGET_INACTIVE: { status: 409, title: 'The proposed owner is not active' },
  HANDOVER_TARGET_INVALID: { status: 400, title: 'Agents cannot be handed over to the person leaving' },
  HANDOVER_TARGET_NOT_FOUND: { status: 422, title: 'The proposed owner does not exist' },
  HANDOVER_TARGET_REQUIRED: { status: 422, title: 'No proposed owner: name one' },
  HUMAN_EXISTS: { status: 409, title: 'A human with this email or userName exists' },
  HUMAN_MANAGER_INVALID: { status: 400, title: 'A human cannot be their own manager' },
  HUMAN_MANAGER_NOT_FOUND: { status: 422, title: 'The manager does not exist' },
  HUMAN_NOT_ACTIVE: { status: 422, title: 'The human is not active' },
  HUMAN_NOT_FOUND: { status: 404, title: 'No such human' },
  IDENTITY_DECOMMISSIONED: { status: 409, title: 'The identity is decommissioned' },
  IDENTITY_NOT_ACTIVE: { status: 409, title: 'The identity is not active' },
  IDENTITY_NOT_FOUND: { status: 404, title: 'No such agent or workload' },
  IDENTITY_OWNER_INACTIVE: { status: 422, title: 'The owner is not active' },
  IDENTITY_OWNER_NOT_FOUND: { status: 422, title: 'The owner does not exist' },
  IDENTITY_SPONSOR_INVALID: { status: 422, title: 'The sponsor is not an active human' },
  IDENTITY_SUSPENDED: { status: 401, title: 'The identity is suspended' },
  WORKLOAD_NOT_FOUND: { status: 404, title: 'No such workload' },

  // Sign-in and credentials of people
  INTERACTION_EXPIRED: { status: 400, title: 'The sign-in has expired' },
  PASSWORD_WEAK: { status: 400, title: 'The password is too short or too long' },
  TOTP_INVALID: { status: 400, title: 'The one-time code does not match' },

  // SCIM 2.0 (RFC 7644 §3.12: the scimType keywords, then bare statuses)
  SCIM_CONTENT_TYPE: { status: 415, title: 'SCIM: send application/scim+json' },
  SCIM_FORBIDDEN: { status: 403, title: 'SCIM: this change is managed in Mandate' },
  SCIM_INVALID_FILTER: { status: 400, title: 'SCIM: the filter is invalid' },
  SCIM_INVALID_PATH: { status: 400, title: 'SCIM: the path is invalid' },
  SCIM_INVALID_SYNTAX: { status: 400, title: 'SCIM: the request body is invalid' },
  SCIM_INVALID_VALUE: { status: 400, title: 'SCIM: a value is invalid' },
  SCIM_INVALID_VERS: { status: 400, title: 'SCIM: the protocol version is not supported' },
  SCIM_MUTABILITY: { status: 400, title: 'SCIM: the attribute cannot be changed' },
  SCIM_NO_TARGET: { status: 400, title: 'SCIM: the path matches nothing' },
  SCIM_NOT_FOUND: { status: 404, title: 'SCIM: no such resource' },
  SCIM_PRECONDITION_FAILED: { status: 412, title: 'SCIM: the resource has changed' },
  SCIM_SENSITIVE: { status: 400, title: 'SCIM: sensitive data in the request' },
  SCIM_TOO_LARGE: { status: 413, title: 'SCIM: the request is too large' },
  SCIM_TOO_MANY: { status: 400, title: 'SCIM: too many results or operations' },
  SCIM_UNAUTHORIZED: { status: 401, title: 'SCIM: a valid token is required' },
  SCIM_UNIQUENESS: { status: 409, title: 'SCIM: a unique attribute is taken' },

  // OAuth: clients, tokens, delegations, federation
  CLIENT_NOT_FOUND: { status: 404, title: 'No such OAuth client' },
  CLIENT_SCOPE_RESERVED: { status: 400, title: 'The scope is reserved for users\' own clients' },
  DELEGATE_INVALID: { status: 422, title: 'Delegate to someone other than yourself and the holder' },
  DELEGATION_NOT_FOUND: { status: 404, title: 'No such delegation' },
  DELEGATION_SELF_SERVICE_FORBIDDEN: { status: 403, title: 'Only the user, through their own client, may manage their delegations' },
  DPOP_NONCE_REQUIRED: { status: 401, title: 'DPoP: use the server\'s nonce' },
  DPOP_PROOF_INVALID: { status: 401, title: 'DPoP: the proof is invalid' },
  DPOP_PROOF_REQUIRED: { status: 401, title: 'DPoP: a proof is required' },
  DPOP_REPLAY: { status: 401, title: 'DPoP: the proof was used before' },
  FEDERATION_ISSUER_EXISTS: { status: 409, title: 'The issuer is already trusted' },
  FEDERATION_ISSUER_NOT_FOUND: { status: 404, title: 'No such trusted issuer' },
  FEDERATION_ISSUER_UNTRUSTED: { status: 400, title: 'The assertion\'s issuer is not trusted' },
  FEDERATION_JWKS_INVALID: { status: 502, title: 'The issuer\'s JWKS is unusable' },
  FEDERATION_NO_RULE: { status: 400, title: 'No claim rule maps the assertion to a workload' },
  FEDERATION_RESOURCE_INVALID: { status: 400, title: 'One absolute https resource is required' },
  FEDERATION_TOKEN_INVALID: { status: 400, title: 'The assertion is invalid' },
  FEDERATION_TOKEN_REPLAYED: { status: 400, title: 'The assertion was used before' },
  MTLS_CERTIFICATE_REQUIRED: { status: 401, title: 'The token is bound to a client certificate' },
  OAUTH_UNAVAILABLE: { status: 503, title: 'The authorization server is not reachable this way' },
  TOKEN_AUDIENCE_MISMATCH: { status: 401, title: 'The token is for another audience' },
  TOKEN_BINDING_MISMATCH: { status: 401, title: 'The token\'s proof of possession does not match' },
  TOKEN_EXPIRED: { status: 401, title: 'The token has expired' },
  TOKEN_INVALID: { status: 401, title: 'The token is invalid' },
  TOKEN_MISSING: { status: 401, title: 'An access token is required' },
  TOKEN_REVOKED: { status: 401, title: 'The token was revoked' },
  TOKEN_SCOPE_INSUFFICIENT: { status: 403, title: 'The token lacks a required scope' },
  VERIFIER_UNAVAILABLE: { status: 503, title: 'The token could not be checked; retry shortly' },

  // PKI
  CSR_INVALID: { status: 400, title: 'Not a PEM PKCS#10 certificate request' },
  CSR_KEY_WEAK: { status: 400, title: 'The certificate request\'s key is too weak' },

  // Outbound fetches and webhooks
  FETCH_ADDRESS_FORBIDDEN: { status: 400, title: 'The URL resolves to a private address' },
  FETCH_FAILED: { status: 502, title: 'The remote fetch failed' },
  FETCH_TOO_LARGE: { status: 502, title: 'The remote document is too large' },
  FETCH_UNREACHABLE: { status: 502, title: 'The remote host cannot be reached' },
  FETCH_URL_INSECURE: { status: 400, title: 'The URL must be https' },
  FETCH_URL_INVALID: { status: 400, title: 'Not a URL' },
  WEBHOOK_URL_INSECURE: { status: 400, title: 'The webhook URL must be https' },
  WEBHOOK_URL_INVALID: { status: 400, title: 'The webhook URL is not a URL' },

  // MCP gateway
  GATEWAY_AGENT_INACTIVE: { status: 403, title: 'The calling agent is not active' },
  GATEWAY_CREDENTIAL_MISSING: { status: 502, title: 'The upstream credential is missing from the vault' },
  GATEWAY_DISCOVERY_FAILED: { status: 502, title: 'Discovering the upstream failed' },
  GATEWAY_UPSTREAM_TOKEN_FAILED: { status: 502, title: 'The upstream token endpoint failed' },
  GATEWAY_WEBHOOK_INSECURE: { status: 400, title: 'The approval webhook must be https' },
  KILL_SELECTOR_INVALID: { status: 400, title: 'Name exactly one kill-switch selector' },
  MCP_LABEL_INVALID: { status: 400, title: 'The label is invalid' },
  MCP_SERVER_EXISTS: { status: 409, title: 'An MCP server with this name exists' },
  MCP_SERVER_NAME_INVALID: { status: 400, title: 'The MCP server name is invalid' },
  MCP_SERVER_NOT_FOUND: { status: 404, title: 'No such MCP server' },
  MCP_SERVER_URL_INVALID: { status: 400, title: 'The MCP server URL is invalid' },
  MCP_TOOL_NOT_FOUND: { status: 404, title: 'No such tool (discover it first)' },

  // Approvals of gated calls
  APPROVAL_CLOSED: { status: 409, title: 'The approval is already decided' },
  APPROVAL_FORBIDDEN: { status: 403, title: 'The caller may not decide this approval' },
  APPROVAL_NOT_FOUND: { status: 404, title: 'No such approval' },
  APPROVAL_RULE_EXISTS: { status: 409, title: 'An approval rule for this pattern exists' },
  APPROVAL_RULE_INVALID: { status: 400, title: 'The approval rule is invalid' },
  APPROVAL_RULE_NOT_FOUND: { status: 404, title: 'No such approval rule' },
  APPROVER_MISMATCH: { status: 403, title: 'You may only decide as yourself' },
  APPROVER_NOT_ELIGIBLE: { status: 403, title: 'The approver is not eligible' },
  APPROVER_NOT_FOUND: { status: 422, title: 'The approver does not exist' },

  // Policies and the PDP
  AUTHZEN_PAGE_INVALID: { status: 400, title: 'AuthZEN: the page token is not one this PDP issued' },
  AUTHZEN_PROPERTIES_RESERVED: { status: 400, title: 'AuthZEN: these properties are Mandate\'s' },
  AUTHZEN_REQUEST_INVALID: { status: 400, title: 'AuthZEN: the request is invalid' },
  ENTITY_HIERARCHY_TOO_DEEP: { status: 400, title: 'The entity hierarchy is too deep' },
  ENTITY_HIERARCHY_TOO_LARGE: { status: 400, title: 'The entity hierarchy is too large' },
  POLICY_COMPILE: { status: 400, title: 'The policies do not compile' },
  POLICY_ENTITIES_INVALID: { status: 400, title: 'The entities are invalid' },
  POLICY_ENTITY_CYCLE: { status: 400, title: 'The entity hierarchy has a cycle' },
  POLICY_EVAL_INPUT: { status: 400, title: 'The evaluation input is invalid' },
  POLICY_INVALID: { status: 400, title: 'The policies do not validate against the schema' },
  POLICY_LINK: { status: 400, title: 'A policy template cannot be linked' },
  POLICY_PARSE: { status: 400, title: 'A policy does not parse' },
  POLICY_SCHEMA: { status: 400, title: 'The schema cannot be used' },
  POLICY_TOO_COMPLEX: { status: 400, title: 'A policy is too complex' },
  POLICY_VALUE_INVALID: { status: 400, title: 'A value is invalid' },
  POLICY_VERSION_NOT_FOUND: { status: 404, title: 'No such policy version' },

  // Governance: grants, access requests, certifications, separation of duties
  ACCESS_ALREADY_DECIDED: { status: 409, title: 'The approver has already decided this request' },
  ACCESS_DURATION_TOO_LONG: { status: 422, title: 'The requested duration exceeds the ceiling' },
  ACCESS_DURATION_TOO_SHORT: { status: 422, title: 'The requested duration is too short' },
  ACCESS_REQUEST_EXISTS: { status: 409, title: 'The same request is already pending' },
  ACCESS_REQUEST_NOT_ACTIVE: { status: 409, title: 'The request is not active' },
  ACCESS_REQUEST_NOT_FOUND: { status: 404, title: 'No such access request' },
  ACCESS_REQUEST_NOT_PENDING: { status: 409, title: 'The request was decided concurrently' },
  ACCESS_SELF_APPROVAL: { status: 403, title: 'A requester cannot decide their own request' },
  CERTIFICATION_CLOSED: { status: 409, title: 'The certification campaign is closed' },
  CERTIFICATION_DEADLINE_INVALID: { status: 400, title: 'The deadline must be in the future' },
  CERTIFICATION_ITEM_DECIDED: { status: 409, title: 'The certification item is already decided' },
  CERTIFICATION_ITEM_NOT_FOUND: { status: 404, title: 'No such certification item' },
  CERTIFICATION_NOT_FOUND: { status: 404, title: 'No such certification campaign' },
  ENTITLEMENT_INVALID: { status: 400, title: 'Not an entitlement (<kind>:<value>)' },
  GRANT_EXISTS: { status: 409, title: 'The principal already holds this entitlement' },
  GRANT_EXPIRY_INVALID: { status: 400, title: 'The expiry must be in the future' },
  GRANT_NOT_ACTIVE: { status: 409, title: 'The grant is not active' },
  GRANT_NOT_FOUND: { status: 404, title: 'No such grant' },
  GRANTS_UNAVAILABLE: { status: 503, title: 'Entitlements cannot be read right now' },
  PRINCIPAL_DECOMMISSIONED: { status: 409, title: 'The principal is decommissioned' },
  PRINCIPAL_NOT_ACTIVE: { status: 409, title: 'The principal is not active' },
  PRINCIPAL_NOT_FOUND: { status: 422, title: 'No such human, agent or workload' },
  REQUESTER_INVALID: { status: 422, title: 'The requester must be the principal or an active human' },
  REVIEWER_INVALID: { status: 422, title: 'Reviewers must be active humans' },
  REVIEWER_MISMATCH: { status: 403, title: 'You may only decide as yourself' },
  REVIEWER_NOT_ASSIGNED: { status: 403, title: 'The reviewer is not assigned to this item' },
  SOD_CONFLICT: { status: 409, title: 'The grant violates a separation-of-duties rule' },
  SOD_RULE_EXISTS: { status: 409, title: 'A separation-of-duties rule with this name exists' },
  SOD_RULE_INVALID: { status: 400, title: 'The separation-of-duties rule is invalid' },
  SOD_RULE_NOT_FOUND: { status: 404, title: 'No such separation-of-duties rule' },

  // Audit
  AUDIT_EXPORT_INVALID: { status: 400, title: 'Not a Mandate audit export' },
  AUDIT_FORMAT_UNKNOWN: { status: 400, title: 'Unknown export format' },
  AUDIT_KEYS_INVALID: { status: 400, title: 'The checkpoint keys are unusable' },
  AUDIT_NOT_INITIALISED: { status: 500, title: 'The audit log was not initialised' },
  AUDIT_SINK_EXISTS: { status: 409, title: 'An audit sink with this name exists' },
  AUDIT_SINK_NOT_FOUND: { status: 404, title: 'No such audit sink' },
  AUDIT_SINK_URL_INSECURE: { status: 400, title: 'Audit sinks must use https' },

  // Vault
  VAULT_KEY_MISSING: { status: 500, title: 'A data key is missing' },
  VAULT_MASTER_KEY_INVALID: { status: 400, title: 'The new master key is not 32 bytes of base64' },
  VAULT_NAME_INVALID: { status: 400, title: 'The secret name is invalid' },

  // The command line
  CLI_REQUEST_FAILED: { status: 500, title: 'The server refused the request' },
  CLI_SERVER_UNREACHABLE: { status: 503, title: 'The server cannot be reached' },
  CLI_TOKEN_REQUIRED: { status: 400, title: 'An admin token is required' },
  CLI_USAGE: { status: 400, title: 'The command is used wrongly' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** Whether `code` is one of the catalog's (a code read from outside, e.g. a server's answer to the CLI). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}
