/**
 * Row types of every table, as Kysely sees them. Times are ISO-8601 UTC strings and JSON columns are
 * text in both dialects, so rows read the same from SQLite and PostgreSQL.
 */
export interface HumanTable {
  id: string;
  email: string;
  user_name: string;
  display_name: string;
  department: string | null;
  manager_id: string | null;
  /** `deleted` keeps the row (agents still name it as their former owner) but hides it from SCIM. */
  status: 'active' | 'inactive' | 'deleted';
  external_id: string | null;
  attributes: string;
  created_at: string;
  updated_at: string;
  deactivated_at: string | null;
}

export interface GroupTable {
  id: string;
  display_name: string;
  external_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface GroupMemberTable {
  group_id: string;
  human_id: string;
}

export interface IdentityTable {
  id: string;
  kind: 'agent' | 'workload';
  name: string;
  owner_id: string;
  sponsor_id: string | null;
  purpose: string | null;
  environment: string | null;
  model_provider: string | null;
  model: string | null;
  tags: string;
  status: 'active' | 'suspended' | 'decommissioned';
  status_reason: string | null;
  review_reason: string | null;
  created_at: string;
  updated_at: string;
  last_used_at: string | null;
  /** ISO 8601 (ms): tokens issued before this instant are refused (set on suspension and decommissioning; a resume keeps it). */
  tokens_not_before: string | null;
}

export interface FindingTable {
  id: string;
  kind: 'orphaned' | 'inactive' | 'handover' | 'review';
  subject_id: string;
  status: 'open' | 'resolved';
  details: string;
  created_at: string;
  resolved_at: string | null;
}

export interface AuditEventTable {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointTable {
  seq: number;
  hash: string;
  signature: string;
  key_id: string;
  ts: string;
}

export interface KeyTable {
  id: string;
  purpose: string;
  public_jwk: string;
  sealed_private: string;
  created_at: string;
  retired_at: string | null;
}

// ---- 0005-governance ----------------------------------------------------------------------------

export interface JobLeaseTable {
  name: string;
  holder: string;
  expires_at: string;
}

export interface AuditSinkTable {
  id: string;
  name: string;
  url: string;
  format: 'jsonl' | 'ocsf';
  sealed_secret: string;
  batch_size: number;
  /** The last sequence number the receiver acknowledged. */
  cursor: number;
  last_error: string | null;
  last_delivery_at: string | null;
  created_at: string;
}

// ---- 0002-oauth ---------------------------------------------------------------------------------

export interface OAuthPayloadTable {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  expires_at: string | null;
  consumed_at: string | null;
}

export interface OAuthClientTable {
  client_id: string;
  identity_id: string | null;
  auth_method: string;
  metadata: string;
  secret_hash: string | null;
  scopes: string;
  created_by: string;
  created_at: string;
  disabled_at: string | null;
}

export interface OAuthRevocationTable {
  jti: string;
  client_id: string | null;
  reason: string;
  revoked_at: string;
  expires_at: string;
}

export interface OAuthReplayTable {
  key: string;
  expires_at: string;
}

export interface OAuthDelegationTable {
  id: string;
  human_id: string;
  identity_id: string;
  client_id: string | null;
  scopes: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface OAuthFederationIssuerTable {
  id: string;
  issuer: string;
  jwks_url: string | null;
  jwks: string | null;
  audience: string;
  rules: string;
  created_at: string;
  updated_at: string;
}

export interface PkiCertificateTable {
  serial: string;
  identity_id: string;
  spiffe_id: string;
  thumbprint: string;
  not_before: string;
  not_after: string;
  created_at: string;
  revoked_at: string | null;
}

export interface HumanCredentialTable {
  human_id: string;
  password_hash: string | null;
  /** The confirmed TOTP secret (sealed); the one sign-in checks. */
  totp_sealed: string | null;
  totp_confirmed: number;
  totp_last_step: number | null;
  updated_at: string;
  /** 0009: a secret being enrolled, not yet confirmed; sign-in ignores it. */
  totp_pending_sealed: string | null;
}

// ---- 0003-policy --------------------------------------------------------------------------------

export interface PolicyVersionTable {
  version: number;
  cedar: string;
  mode: 'enforce' | 'log-only';
  /** 1 for the one active version, else 0. */
  active: number;
  /** Template links, JSON: [{templateId, newId, values: {"?principal": {type, id}, "?resource": {type, id}}}]. */
  links: string;
  note: string | null;
  created_by: string;
  created_at: string;
}

export interface PolicyEntityTable {
  type: string;
  id: string;
  json: string;
  updated_at: string;
}

// ---- 0007-access --------------------------------------------------------------------------------

export interface GrantTable {
  id: string;
  principal_id: string;
  entitlement: string;
  kind: 'standing' | 'jit';
  status: 'active' | 'revoked' | 'expired';
  request_id: string | null;
  granted_by: string;
  reason: string | null;
  created_at: string;
  expires_at: string | null;
  ended_at: string | null;
  ended_by: string | null;
  end_reason: string | null;
}

export interface ApprovalRuleTable {
  id: string;
  pattern: string;
  /** JSON: approval stages, each `{approvers, required}`. */
  stages: string;
  max_duration_seconds: number;
  created_by: string;
  created_at: string;
}

export interface AccessRequestTable {
  id: string;
  principal_id: string;
  entitlement: string;
  requester_id: string;
  justification: string;
  duration_seconds: number;
  status: 'pending' | 'approved' | 'denied' | 'revoked' | 'expired';
  rule_pattern: string | null;
  /** JSON snapshot of the approval stages that applied when the request was made. */
  stages: string;
  grant_id: string | null;
  created_by: string;
  created_at: string;
  decided_at: string | null;
}

export interface AccessApprovalTable {
  request_id: string;
  approver_id: string;
  decision: 'approve' | 'deny';
  comment: string | null;
  created_at: string;
}

export interface SodRuleTable {
  id: string;
  name: string;
  description: string | null;
  /** JSON string[]: any two conflict. */
  entitlements: string;
  /** JSON [a, b][]: explicit conflicting pairs. */
  pairs: string;
  count_delegation: number;
  enforce: 'grant' | 'session' | 'both';
  created_by: string;
  created_at: string;
}

export interface CertificationTable {
  id: string;
  name: string;
  scope: string;
  reviewers: string;
  deadline: string;
  on_no_answer: 'revoke' | 'keep';
  status: 'open' | 'closed';
  webhook_url: string | null;
  sealed_secret: string | null;
  /** JSON number[]: seconds before the deadline at which reminders go out. */
  remind_before: string;
  /** JSON number[]: the reminders already delivered. */
  reminders_sent: string;
  last_reminder_error: string | null;
  created_by: string;
  created_at: string;
  closed_at: string | null;
}

export interface CertificationItemTable {
  id: string;
  campaign_id: string;
  principal_id: string;
  entitlement: string;
  grant_ids: string;
  reviewer_ids: string;
  status: 'pending' | 'keep' | 'revoke';
  decided_by: string | null;
  decision_source: 'reviewer' | 'deadline' | null;
  comment: string | null;
  delegations: string;
  revoked_grant_ids: string;
  decided_at: string | null;
}

// ---- 0004-gateway -------------------------------------------------------------------------------

export interface VaultDataKeyTable {
  id: string;
  /** The data key, sealed with the master key (envelope encryption). */
  sealed_key: string;
  created_at: string;
  retired_at: string | null;
}

export interface VaultSecretTable {
  id: string;
  name: string;
  data_key_id: string;
  /** The secret, sealed with its data key; the secret's id is bound as additional data. */
  ciphertext: string;
  created_at: string;
  updated_at: string;
}

export interface McpServerTable {
  name: string;
  transport: 'http' | 'stdio';
  url: string | null;
  command: string | null;
  args: string;
  /** Vault secret holding the stdio child's environment (it may carry API keys). */
  env_secret: string | null;
  credential_secret: string | null;
  credential_kind: string | null;
  labels: string;
  settings: string;
  discovered_at: string | null;
  discovery_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface McpToolTable {
  server: string;
  name: string;
  description: string | null;
  input_schema: string;
  labels: string;
  settings: string;
  /** 0 when the last discovery no longer saw the tool (labels are kept in case it returns). */
  present: number;
  updated_at: string;
}

export interface McpApprovalTable {
  id: string;
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'cancelled';
  agent_id: string;
  owner_id: string;
  user_id: string | null;
  approver: string;
  server: string;
  action: string;
  target: string;
  arguments: string;
  args_digest: string;
  policies: string;
  session_id: string;
  decided_by: string | null;
  reason: string | null;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
}

export interface McpSettingTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface McpAgentLimitTable {
  identity_id: string;
  calls_per_minute: number | null;
  max_sessions: number | null;
  updated_at: string;
}

export interface Database {
  humans: HumanTable;
  groups: GroupTable;
  group_members: GroupMemberTable;
  identities: IdentityTable;
  findings: FindingTable;
  audit_events: AuditEventTable;
  audit_checkpoints: AuditCheckpointTable;
  keys: KeyTable;
  policy_versions: PolicyVersionTable;
  policy_entities: PolicyEntityTable;
  oauth_payloads: OAuthPayloadTable;
  oauth_clients: OAuthClientTable;
  oauth_revocations: OAuthRevocationTable;
  oauth_replay: OAuthReplayTable;
  oauth_delegations: OAuthDelegationTable;
  oauth_federation_issuers: OAuthFederationIssuerTable;
  pki_certificates: PkiCertificateTable;
  human_credentials: HumanCredentialTable;
  job_leases: JobLeaseTable;
  audit_sinks: AuditSinkTable;
  grants: GrantTable;
  approval_rules: ApprovalRuleTable;
  access_requests: AccessRequestTable;
  access_approvals: AccessApprovalTable;
  sod_rules: SodRuleTable;
  certifications: CertificationTable;
  certification_items: CertificationItemTable;
  vault_data_keys: VaultDataKeyTable;
  vault_secrets: VaultSecretTable;
  mcp_servers: McpServerTable;
  mcp_tools: McpToolTable;
  mcp_approvals: McpApprovalTable;
  mcp_settings: McpSettingTable;
  mcp_agent_limits: McpAgentLimitTable;
}
