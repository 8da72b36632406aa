export { ScimService, type ListQuery, type Projection, type ScimServiceOptions } from './service.ts';
export { scimError, type ScimType } from './errors.ts';
export { schemaDocuments, resourceTypeDocuments, serviceProviderConfig } from './schemas.ts';
export { parseFilter, type FilterPlan } from './filter.ts';
export { ERROR_SCHEMA, SCIM_CONTENT_TYPE, USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA, PATCH_OP_SCHEMA, LIST_RESPONSE_SCHEMA } from './constants.ts';
