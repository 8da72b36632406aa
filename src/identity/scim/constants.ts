/** URNs and limits of Mandate's SCIM 2.0 service provider (RFC 7643, RFC 7644). */

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const SERVICE_PROVIDER_CONFIG_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
export const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';

/** RFC 7644 §3.1: the SCIM media type; `application/json` is accepted too (§8.1). */
export const SCIM_CONTENT_TYPE = 'application/scim+json';

/** Largest page a list answers with (advertised as filter.maxResults, RFC 7643 §5). */
export const MAX_RESULTS = 200;
/** Page size when the client names none. */
export const DEFAULT_COUNT = 100;
/** Most operations one PATCH may carry, and most members one group write may name. */
export const MAX_OPERATIONS = 1000;
export const MAX_MEMBERS = 10_000;
/** Longest filter expression accepted. */
export const MAX_FILTER_LENGTH = 2000;

/*
 * Longest string Mandate stores for a SCIM attribute. RFC 7643 sets no lengths; without these a value was
 * bounded only by the body limit (a 100,000-character givenName was stored, then returned on every read
 * and listed in every page). Each is far above what an identity provider sends. Longer is 400
 * `invalidValue` (RFC 7644 §3.12) and nothing is written.
 */
/** userName and email addresses: a 64-character local part, `@` and a 255-character domain (RFC 5321 §4.5.3.1). */
export const MAX_EMAIL_LENGTH = 320;
/** Names and identifiers: displayName, name.*, nickName, title, externalId, enterprise attributes, a group's displayName. */
export const MAX_NAME_LENGTH = 256;
/** Any other string (addresses, phone numbers, URLs, roles, entitlements, …). */
export const MAX_TEXT_LENGTH = 1024;
/** An `x509Certificates` value: one base64 DER certificate (RFC 7643 §4.1.2). */
export const MAX_CERTIFICATE_LENGTH = 16_384;
