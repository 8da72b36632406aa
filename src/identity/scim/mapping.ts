import { canonicalJson } from '../../core/canonical-json.ts';
import { sha256Hex } from '../../core/crypto.ts';
import type { Group, Human } from '../types.ts';
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, MAX_CERTIFICATE_LENGTH, MAX_EMAIL_LENGTH, MAX_MEMBERS, MAX_NAME_LENGTH, MAX_TEXT_LENGTH, USER_SCHEMA } from './constants.ts';
import { fromClientInput, scimError } from './errors.ts';
import { GroupSchema, UserSchema } from './schemas.ts';

type Json = Record<string, unknown>;

/** What a SCIM User body means for a Mandate human. */
export interface UserState {
  userName: string;
  displayName: string;
  email: string;
  externalId: string | null;
  /** `undefined` when the body does not say: a PUT without `active` neither deactivates nor reactivates. */
  active: boolean | undefined;
  department: string | null;
  managerId: string | null;
  /** Every other SCIM attribute the client sent (name, emails, title, …), kept to be returned as sent. */
  extra: Json;
}

export interface GroupState {
  displayName: string;
  externalId: string | null;
  /** `undefined` when the body has no `members`. */
  members: string[] | undefined;
}

/** Where SCIM-only attributes live on a human: `attributes.scim`. */
export const SCIM_ATTRIBUTES_KEY = 'scim';

/** User attributes Mandate maps to its own columns or never keeps; the rest of a SCIM User is stored as sent. */
const MAPPED_USER_KEYS = ['schemas', 'id', 'meta', 'userName', 'displayName', 'active', 'externalId', 'password', 'groups', ENTERPRISE_SCHEMA];

const EMAIL = /^[^\s@]+@[^\s@]+$/;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);
const invalidValue = (detail: string) => scimError('invalidValue', detail);

function text(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalidValue(`${name} must be a string`);
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/**
 * Every string in a resource's current representation. A write may keep one of these even when it is over
 * its limit: values stored before the limits existed (or through the admin API's free `attributes`) must
 * not block every later PATCH of that User — least of all the leaver flow's `active: false`. Nothing can
 * grow this way: only a value already stored passes.
 */
export function storedStrings(resource: Json | undefined): ReadonlySet<string> {
  const out = new Set<string>();
  const stack: unknown[] = resource === undefined ? [] : [resource];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') out.add(value);
    else if (Array.isArray(value)) stack.push(...value);
    else if (isObject(value)) stack.push(...Object.values(value));
  }
  return out;
}

const NONE: ReadonlySet<string> = new Set();

function checkLength(value: string | null, name: string, max: number, kept: ReadonlySet<string>): void {
  if (value !== null && value.length > max && !kept.has(value)) throw invalidValue(`${name} is longer than ${max} characters`);
}

/** Top-level User attributes that are names (MAX_NAME_LENGTH); `name.*` and the enterprise extension's are too. */
const NAME_ATTRIBUTES = new Set(['nickname', 'title', 'usertype', 'preferredlanguage', 'locale', 'timezone']);

/** The limit for a string at `path` (attribute names as coerced; array positions left out). */
function limitAt(path: readonly string[]): number {
  const top = (path[0] ?? '').toLowerCase();
  const leaf = (path[path.length - 1] ?? '').toLowerCase();
  if (top === 'emails' && leaf === 'value') return MAX_EMAIL_LENGTH;
  if (top === 'x509certificates' && leaf === 'value') return MAX_CERTIFICATE_LENGTH;
  if (top === 'name' || top === ENTERPRISE_SCHEMA.toLowerCase() || (path.length === 1 && NAME_ATTRIBUTES.has(top))) return MAX_NAME_LENGTH;
  return MAX_TEXT_LENGTH;
}

/** Checks every string of what is stored as sent (a User's `extra`) against its attribute's limit. */
function checkStrings(resource: Json, kept: ReadonlySet<string>): void {
  const stack: [unknown, string[]][] = [[resource, []]];
  while (stack.length > 0) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') checkLength(value, path.join('.').replace(`${ENTERPRISE_SCHEMA}.`, `${ENTERPRISE_SCHEMA}:`), limitAt(path), kept);
    else if (Array.isArray(value)) for (const item of value) stack.push([item, path]);
    else if (isObject(value)) for (const [key, item] of Object.entries(value)) stack.push([item, [...path, key]]);
  }
}

const BOOLEAN_TEXT = /^(true|false)$/i;

/**
 * Entra ID sends some booleans as strings ("True", "False") and the enterprise `manager` as a bare id
 * string; both are accepted as what they obviously mean rather than refused.
 */
export function normaliseUserQuirks(value: unknown, path = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => normaliseUserQuirks(item, path));
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, item] of Object.entries(value)) {
    const lower = key.toLowerCase();
    if ((lower === 'active' || lower === 'primary') && typeof item === 'string' && BOOLEAN_TEXT.test(item)) out[key] = item.toLowerCase() === 'true';
    else if ((lower === 'manager' && path.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase()) || lower === `${ENTERPRISE_SCHEMA}:manager`.toLowerCase()) {
      out[key] = typeof item === 'string' ? { value: item } : item;
    } else out[key] = normaliseUserQuirks(item, key);
  }
  return out;
}

/**
 * Validates a SCIM User (RFC 7643 §4.1, with the enterprise extension §4.3) and maps it to a human.
 * `current` is the User's representation before this write (PUT), whose values may be kept over the limits.
 */
export function userFromScim(body: unknown, current?: Json): UserState {
  if (!isObject(body)) throw scimError('invalidSyntax', 'the body must be a JSON object');
  const normalised = normaliseUserQuirks(body) as Json;
  // scimmy coerces to the schema: type checks, required userName, and drops read-only attributes (id, meta, groups).
  const coerced = fromClientInput('invalidValue', () => JSON.parse(JSON.stringify(new UserSchema(normalised, 'in'))) as Json);
  return userFromCoerced(coerced, current);
}

/** Maps an already coerced SCIM User (from userFromScim or a PATCH result, with the User before it as `current`). */
export function userFromCoerced(user: Json, current?: Json): UserState {
  const kept = current === undefined ? NONE : storedStrings(current);
  const userName = text(user.userName, 'userName');
  if (!userName) throw invalidValue('userName is required');
  checkLength(userName, 'userName', MAX_EMAIL_LENGTH, kept);
  const emails = Array.isArray(user.emails) ? user.emails.filter(isObject) : [];
  const primary = emails.find((e) => e.primary === true) ?? emails[0];
  const email = text(primary?.value, 'emails.value') ?? (EMAIL.test(userName) ? userName : null);
  if (!email) throw invalidValue('an email is required: send emails (one primary) or an email address as userName');
  if (!EMAIL.test(email)) throw invalidValue('the primary email is not an email address');
  const name = isObject(user.name) ? user.name : {};
  const fullName = [name.givenName, name.familyName].filter((part) => typeof part === 'string' && part.trim() !== '').join(' ');
  const displayName = text(user.displayName, 'displayName') ?? text(name.formatted, 'name.formatted') ?? (fullName !== '' ? text(fullName, 'name') : null) ?? userName;
  const enterprise = isObject(user[ENTERPRISE_SCHEMA]) ? user[ENTERPRISE_SCHEMA] : {};
  const manager = isObject(enterprise.manager) ? enterprise.manager : {};
  const extra: Json = { ...user };
  // Mapped to columns, read-only, or never stored: a password sent by an IdP (Okta's password sync) is dropped.
  for (const key of MAPPED_USER_KEYS) delete extra[key];
  const { department: _department, manager: _manager, ...restOfEnterprise } = enterprise;
  if (Object.keys(restOfEnterprise).length > 0) extra[ENTERPRISE_SCHEMA] = restOfEnterprise;
  // What is stored: the mapped columns below and `extra` as sent (which holds every email, name part, …).
  checkStrings(extra, kept);
  checkLength(displayName, user.displayName === undefined ? 'displayName (made from name)' : 'displayName', MAX_NAME_LENGTH, kept);
  const externalId = text(user.externalId, 'externalId');
  checkLength(externalId, 'externalId', MAX_NAME_LENGTH, kept);
  const department = text(enterprise.department, 'department');
  checkLength(department, `${ENTERPRISE_SCHEMA}:department`, MAX_NAME_LENGTH, kept);
  const managerId = text(manager.value, 'manager.value');
  checkLength(managerId, `${ENTERPRISE_SCHEMA}:manager.value`, MAX_NAME_LENGTH, kept);
  return {
    userName,
    displayName,
    email: email.toLowerCase(),
    externalId,
    active: typeof user.active === 'boolean' ? user.active : undefined,
    department,
    managerId,
    extra,
  };
}

export interface UserContext {
  baseUrl: string;
  groups: { id: string; displayName: string }[];
  manager?: { id: string; displayName: string } | undefined;
}

/** The SCIM representation of a human (RFC 7643 §4.1). */
export function userToScim(human: Human, context: UserContext): Json {
  const stored: Json = isObject(human.attributes[SCIM_ATTRIBUTES_KEY]) ? { ...(human.attributes[SCIM_ATTRIBUTES_KEY] as Json) } : {};
  // The admin API may write `attributes` freely: what Mandate owns always comes from its columns.
  for (const key of MAPPED_USER_KEYS) if (key !== ENTERPRISE_SCHEMA) delete stored[key];
  const storedEmails = Array.isArray(stored.emails) ? stored.emails.filter(isObject) : [];
  const emails = storedEmails.some((e) => typeof e.value === 'string' && e.value.toLowerCase() === human.email)
    ? storedEmails.map((e) => ({ ...e, primary: typeof e.value === 'string' && e.value.toLowerCase() === human.email }))
    : [{ value: human.email, type: 'work', primary: true }];
  const { department: _department, manager: _manager, ...storedEnterprise } = isObject(stored[ENTERPRISE_SCHEMA]) ? (stored[ENTERPRISE_SCHEMA] as Json) : {};
  const enterprise: Json = {
    ...storedEnterprise,
    ...(human.department !== null && { department: human.department }),
    ...(human.managerId !== null && {
      manager: { value: human.managerId, $ref: `${context.baseUrl}/Users/${human.managerId}`, ...(context.manager && { displayName: context.manager.displayName }) },
    }),
  };
  const hasEnterprise = Object.keys(enterprise).length > 0;
  // `stored` never holds the mapped keys (userFromCoerced removes them), so the order here is only for readers.
  const resource: Json = {
    schemas: hasEnterprise ? [USER_SCHEMA, ENTERPRISE_SCHEMA] : [USER_SCHEMA],
    id: human.id,
    ...(human.externalId !== null && { externalId: human.externalId }),
    userName: human.userName,
    ...stored,
    displayName: human.displayName,
    emails,
    active: human.status === 'active',
    groups: context.groups.map((g) => ({ value: g.id, display: g.displayName, $ref: `${context.baseUrl}/Groups/${g.id}`, type: 'direct' })),
  };
  if (hasEnterprise) resource[ENTERPRISE_SCHEMA] = enterprise;
  else delete resource[ENTERPRISE_SCHEMA];
  resource.meta = { resourceType: 'User', created: human.createdAt, lastModified: human.updatedAt, location: `${context.baseUrl}/Users/${human.id}`, version: versionOf(resource) };
  return resource;
}

/** Validates a SCIM Group (RFC 7643 §4.2). Members must be Users: Mandate has no nested groups. */
export function groupFromScim(body: unknown, current?: Json): GroupState {
  if (!isObject(body)) throw scimError('invalidSyntax', 'the body must be a JSON object');
  if (Array.isArray(body.members) && body.members.length > MAX_MEMBERS) throw invalidValue(`a group write may name at most ${MAX_MEMBERS} members`);
  const coerced = fromClientInput('invalidValue', () => JSON.parse(JSON.stringify(new GroupSchema(body, 'in'))) as Json);
  return groupFromCoerced(coerced, 'members' in body, current);
}

/** `current`: the Group before this write, whose values may be kept over the limits (see storedStrings). */
export function groupFromCoerced(group: Json, membersStated = true, current?: Json): GroupState {
  const kept = current === undefined ? NONE : storedStrings(current);
  const displayName = text(group.displayName, 'displayName');
  if (!displayName) throw invalidValue('displayName is required');
  checkLength(displayName, 'displayName', MAX_NAME_LENGTH, kept);
  let members: string[] | undefined;
  if (membersStated || group.members !== undefined) {
    const list = Array.isArray(group.members) ? group.members : [];
    if (list.length > MAX_MEMBERS) throw invalidValue(`a group may have at most ${MAX_MEMBERS} members`);
    const ids = new Set<string>();
    for (const member of list) {
      if (!isObject(member) || typeof member.value !== 'string' || member.value.trim() === '') throw invalidValue('every member needs a value (the id of a User)');
      if (typeof member.type === 'string' && member.type.toLowerCase() === 'group') throw invalidValue('nested groups are not supported: members must be Users');
      checkLength(member.value.trim(), 'members.value', MAX_NAME_LENGTH, kept);
      ids.add(member.value.trim());
    }
    members = [...ids];
  }
  const externalId = text(group.externalId, 'externalId');
  checkLength(externalId, 'externalId', MAX_NAME_LENGTH, kept);
  return { displayName, externalId, members };
}

/** The SCIM representation of a group (RFC 7643 §4.2); `names` gives members' display names. */
export function groupToScim(group: Group, context: { baseUrl: string; names: Map<string, string> }): Json {
  const resource: Json = {
    schemas: [GROUP_SCHEMA],
    id: group.id,
    ...(group.externalId !== null && { externalId: group.externalId }),
    displayName: group.displayName,
    members: group.members.map((id) => ({ value: id, ...(context.names.has(id) && { display: context.names.get(id) }), $ref: `${context.baseUrl}/Users/${id}`, type: 'User' })),
  };
  resource.meta = { resourceType: 'Group', created: group.createdAt, lastModified: group.updatedAt, location: `${context.baseUrl}/Groups/${group.id}`, version: versionOf(resource) };
  return resource;
}

/**
 * RFC 7644 §3.14: a weak entity tag over the representation itself (not a timestamp, which two writes
 * in the same millisecond would share).
 */
export function versionOf(resource: Json): string {
  const { meta: _meta, ...rest } = resource;
  return `W/"${sha256Hex(canonicalJson(rest)).slice(0, 27)}"`;
}

/** RFC 7644 §3.4.2.5 / §3.9: `attributes` narrows the representation, `excludedAttributes` trims it; `id`, `schemas` and `meta` always stay. */
export function project(resource: Json, attributes: string[] | undefined, excluded: string[] | undefined): Json {
  const ALWAYS = new Set(['id', 'schemas', 'meta']);
  const paths = (list: string[]) => list.map((path) => path.trim()).filter((path) => path !== '').map(splitPath);
  if (attributes && attributes.length > 0) {
    const wanted = paths(attributes);
    const out: Json = {};
    for (const [key, value] of Object.entries(resource)) {
      if (ALWAYS.has(key)) out[key] = value;
      const matching = wanted.filter(([top]) => top === key.toLowerCase());
      if (matching.length === 0) continue;
      if (matching.some(([, sub]) => sub === undefined) || !isObject(value)) out[key] = value;
      else out[key] = Object.fromEntries(Object.entries(value).filter(([k]) => matching.some(([, sub]) => sub === k.toLowerCase())));
    }
    return out;
  }
  if (excluded && excluded.length > 0) {
    const out: Json = { ...resource };
    for (const [top, sub] of paths(excluded)) {
      const key = Object.keys(out).find((k) => k.toLowerCase() === top && !ALWAYS.has(k));
      if (!key) continue;
      const value = out[key];
      if (sub === undefined) delete out[key];
      else if (isObject(value)) out[key] = Object.fromEntries(Object.entries(value).filter(([k]) => k.toLowerCase() !== sub));
    }
    return out;
  }
  return resource;
}

/** `name.givenName` → ['name', 'givenname']; `urn:…:User:department` → [urn…:user, 'department']. */
function splitPath(path: string): [string, string | undefined] {
  const lower = path.toLowerCase();
  const urn = ENTERPRISE_SCHEMA.toLowerCase();
  if (lower.startsWith(`${urn}:`)) return [urn, lower.slice(urn.length + 1).split('.')[0]];
  if (lower === urn) return [urn, undefined];
  for (const core of [USER_SCHEMA, GROUP_SCHEMA]) {
    if (lower.startsWith(`${core.toLowerCase()}:`)) return splitPath(path.slice(core.length + 1));
  }
  const [top, sub] = lower.split('.');
  return [top!, sub];
}
