import SCIMMY from 'scimmy';
import { ENTERPRISE_SCHEMA, MAX_OPERATIONS, PATCH_OP_SCHEMA } from './constants.ts';
import { fromClientInputAsync, scimError } from './errors.ts';
import { normaliseUserQuirks } from './mapping.ts';
import { GroupSchema, UserSchema } from './schemas.ts';
import { assertFilterBounded, countOr, type ScimResourceKind } from './filter.ts';

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);
const BOOLEAN_TEXT = /^(true|false)$/i;

/**
 * Checks the envelope (RFC 7644 §3.5.2: `schemas` and a non-empty `Operations` list of objects with an
 * `op`) and smooths what identity providers are known to send: Entra ID's capitalised ops ("Replace"),
 * its string booleans (`"value": "False"` for `active`) and its bare-string `manager`. A missing
 * `schemas` is tolerated; a wrong one is not.
 */
export function normalisePatch(kind: ScimResourceKind, body: unknown): { schemas: [string]; Operations: Json[] } {
  if (!isObject(body)) throw scimError('invalidSyntax', 'the body must be a PatchOp JSON object');
  if (body.schemas !== undefined && !(Array.isArray(body.schemas) && body.schemas.length === 1 && body.schemas[0] === PATCH_OP_SCHEMA)) {
    throw scimError('invalidSyntax', `schemas must be ["${PATCH_OP_SCHEMA}"]`);
  }
  const operations = body.Operations ?? body.operations;
  if (!Array.isArray(operations) || operations.length === 0) throw scimError('invalidSyntax', 'Operations must be a non-empty list');
  if (operations.length > MAX_OPERATIONS) throw scimError('tooMany', `a PATCH may carry at most ${MAX_OPERATIONS} operations`);
  // A path's value filter (`emails[type eq "work" or …]`) is expanded by scimmy as a `?filter=` is: the
  // same bounds hold, for the whole PATCH at once (its operations are applied one after another).
  let ors = 0;
  for (const operation of operations) {
    if (!isObject(operation)) continue;
    if (typeof operation.path === 'string') {
      ors += countOr(operation.path);
      assertFilterBounded(operation.path, ors);
    }
  }
  const normalised = operations.map((operation, index) => {
    if (!isObject(operation)) throw scimError('invalidSyntax', `operation ${index + 1} must be an object`);
    const { op, path } = operation;
    let { value } = operation;
    if (typeof op !== 'string' || !/^(add|remove|replace)$/i.test(op)) throw scimError('invalidSyntax', `operation ${index + 1}: op must be add, remove or replace`);
    if (path !== undefined && (typeof path !== 'string' || path.trim() === '')) throw scimError('invalidPath', `operation ${index + 1}: path must be a non-empty string`);
    if (kind === 'User') {
      const lowerPath = typeof path === 'string' ? path.trim().toLowerCase() : '';
      const leaf = lowerPath.split(/[.:]/).pop() ?? '';
      if ((leaf === 'active' || leaf === 'primary') && typeof value === 'string' && BOOLEAN_TEXT.test(value)) value = value.toLowerCase() === 'true';
      else if (lowerPath === `${ENTERPRISE_SCHEMA}:manager`.toLowerCase() && typeof value === 'string') value = { value };
      else value = normaliseUserQuirks(value, lowerPath === ENTERPRISE_SCHEMA.toLowerCase() ? ENTERPRISE_SCHEMA : '');
    } else if (typeof path === 'string' && path.trim().toLowerCase() === 'members') value = memberValues(value);
    else if (path === undefined && isObject(value)) value = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k.toLowerCase() === 'members' ? memberValues(v) : v]));
    return { op: op.toLowerCase(), ...(typeof path === 'string' && { path: path.trim() }), ...(value !== undefined && { value }) };
  });
  // Checked as scimmy will get them (after the smoothing above, which turns member ids into objects).
  for (const operation of normalised) if (operation.op === 'remove') assertRemovalValuesPlain(operation.value);
  return { schemas: [PATCH_OP_SCHEMA], Operations: normalised };
}

/**
 * scimmy removes the values a `remove` lists from a multi-valued attribute by pasting each value's keys
 * and strings into a filter (`value eq "<string>" and …`, joined by `or`), unescaped: a quote in a value
 * or an odd key would let the value write its own filter, `or`s included, past every bound on filters
 * (one such PATCH used to exhaust the heap). Values to remove must therefore be plain: attribute-name
 * keys, and strings without `"` or `\`.
 */
function assertRemovalValuesPlain(value: unknown): void {
  for (const item of Array.isArray(value) ? value : [value]) {
    // A bare string or a list is pasted character by character (its keys are its indexes): no quotes,
    // no lists inside the list, so nothing depends on how scimmy happens to parse what comes out.
    if (Array.isArray(item)) throw scimError('invalidValue', 'a value to remove must be flat');
    if (typeof item === 'string' && /["\\]/.test(item)) throw scimError('invalidValue', 'a value to remove must not contain " or \\');
    if (!isObject(item)) continue;
    for (const [key, v] of Object.entries(item)) {
      if (!/^[A-Za-z$][A-Za-z0-9_$-]{0,63}$/.test(key)) throw scimError('invalidValue', `a value to remove has an attribute name that is not one: ${JSON.stringify(key.slice(0, 64))}`);
      if (typeof v === 'string' && /["\\]/.test(v)) throw scimError('invalidValue', `a value to remove must not contain " or \\ (in "${key}")`);
      if (v !== null && typeof v === 'object') throw scimError('invalidValue', `a value to remove must be flat (in "${key}")`);
    }
  }
}

/**
 * Applies a PatchOp (RFC 7644 §3.5.2) to a resource's current SCIM representation with scimmy and
 * returns the patched representation (unchanged when the operations change nothing). Errors are the
 * RFC's: invalidPath, noTarget, invalidValue, mutability.
 */
export async function applyPatch(kind: ScimResourceKind, current: Json, body: unknown): Promise<Json> {
  const message = normalisePatch(kind, body);
  const Schema = kind === 'User' ? UserSchema : GroupSchema;
  return fromClientInputAsync('invalidValue', async () => {
    const patch = new SCIMMY.Messages.PatchOp(message as unknown as ConstructorParameters<typeof SCIMMY.Messages.PatchOp>[0]);
    const resource = new Schema(withoutMeta(current), 'out');
    const result = await patch.apply(resource);
    return result === undefined ? current : (JSON.parse(JSON.stringify(result)) as Json);
  });
}

/**
 * A member is identified by its `value` (RFC 7643 §4.2); `display` and `$ref` are Mandate's to fill in.
 * Entra ID sends `{"$ref": null, "value": "…"}`, which as sent would match no member on remove.
 */
function memberValues(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((member) => {
    if (!isObject(member) || typeof member.value !== 'string') return member;
    return { value: member.value, ...(typeof member.type === 'string' && { type: member.type }) };
  });
}

function withoutMeta(resource: Json): Json {
  const { meta: _meta, ...rest } = resource;
  return rest;
}
