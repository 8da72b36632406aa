import SCIMMY from 'scimmy';
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, MAX_RESULTS, RESOURCE_TYPE_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA, USER_SCHEMA } from './constants.ts';

/**
 * scimmy's schema classes are module-level singletons: the enterprise extension (RFC 7643 §4.3) is mixed
 * into the User schema once, here, and every other SCIM module imports the classes from this file.
 */
export const UserSchema = SCIMMY.Schemas.User;
export const GroupSchema = SCIMMY.Schemas.Group;
const EnterpriseUserSchema = SCIMMY.Schemas.EnterpriseUser;

// An extension sits among the attributes as its schema definition, whose `id` is the extension's URN.
const extended = UserSchema.definition.attributes.some((attribute) => (attribute as unknown as { id?: unknown }).id === ENTERPRISE_SCHEMA);
// scimmy's typings want an instance here; its runtime (and documentation) takes the schema class.
if (!extended) UserSchema.extend(EnterpriseUserSchema as unknown as Parameters<typeof UserSchema.extend>[0], false);

/** RFC 7643 §7 schema representations, for `/Schemas`. */
export function schemaDocuments(baseUrl: string): Record<string, unknown>[] {
  return [UserSchema.definition, GroupSchema.definition, EnterpriseUserSchema.definition].map((definition) => {
    // scimmy describes an extended schema with its extensions inlined as attributes; §7 lists each schema on its own.
    const description = definition.describe(`${baseUrl}/Schemas`) as unknown as { attributes: { name: string }[] } & Record<string, unknown>;
    return { ...description, attributes: description.attributes.filter((a) => !a.name.startsWith('urn:')) };
  });
}

/** RFC 7643 §6 resource types, for `/ResourceTypes`. */
export function resourceTypeDocuments(baseUrl: string): Record<string, unknown>[] {
  return [
    {
      schemas: [RESOURCE_TYPE_SCHEMA],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      description: 'A person: Mandate human, owner of agents and workloads',
      schema: USER_SCHEMA,
      schemaExtensions: [{ schema: ENTERPRISE_SCHEMA, required: false }],
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/User` },
    },
    {
      schemas: [RESOURCE_TYPE_SCHEMA],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      description: 'A group of people',
      schema: GROUP_SCHEMA,
      schemaExtensions: [],
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/Group` },
    },
  ];
}

/** RFC 7643 §5: what this service provider supports, so IdPs can adapt. */
export function serviceProviderConfig(baseUrl: string, documentationUri?: string): Record<string, unknown> {
  return {
    schemas: [SERVICE_PROVIDER_CONFIG_SCHEMA],
    ...(documentationUri && { documentationUri }),
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'A static bearer token (MANDATE_SCIM_TOKEN) in the Authorization header, RFC 6750',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}
