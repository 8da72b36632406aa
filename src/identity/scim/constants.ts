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
