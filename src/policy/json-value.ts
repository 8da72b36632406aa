/**
 * Converts cedar-wasm's JSON value form to runtime values, as cedar-wasm does without a schema:
 * `{"__entity": {type, id}}` is an entity reference, `{"__extn": {fn, arg | args}}` an extension call;
 * any other object (including `{type, id}` or one with extra keys) is a record, arrays are sets,
 * integers are Longs, and `null` or fractional numbers are rejected.
 */
import { MandateError } from '../core/errors.ts';
import { callExtension } from './extensions.ts';
import { I64_MAX, I64_MIN, normLong } from './long.ts';
import { CedarRecord, CedarSet, EntityUid } from './values.ts';
import type { Value } from './values.ts';
import { EvaluationError } from './errors.ts';

export type EntityUidJson = { type: string; id: string } | { __entity: { type: string; id: string } };

function fail(where: string, message: string): never {
  throw new MandateError('POLICY_VALUE_INVALID', `${where}: ${message}`, 400, { where });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NAME_RE = /^[_A-Za-z][_A-Za-z0-9]*(::[_A-Za-z][_A-Za-z0-9]*)*$/;
const RESERVED = new Set(['true', 'false', 'if', 'then', 'else', 'in', 'is', 'like', 'has', '__cedar']);
const validTypes = new Set<string>();

/** Entity type names must be Cedar names (`Ns::Type`), as cedar-wasm requires. */
export function isValidTypeName(type: string): boolean {
  if (validTypes.has(type)) return true;
  if (!NAME_RE.test(type) || type.split('::').some((part) => RESERVED.has(part))) return false;
  if (validTypes.size < 10_000) validTypes.add(type);
  return true;
}

/** Parses `{type, id}` or `{__entity: {type, id}}` (both accepted wherever cedar-wasm expects a uid). */
export function uidFromJson(v: unknown, where: string): EntityUid {
  let o = v;
  if (isPlainObject(o) && '__entity' in o) o = o.__entity;
  if (!isPlainObject(o) || typeof o.type !== 'string' || typeof o.id !== 'string') {
    fail(where, 'expected an entity uid {"type": string, "id": string}');
  }
  if (!isValidTypeName(o.type)) fail(where, `\`${o.type}\` is not a valid entity type name`);
  return new EntityUid(o.type, o.id);
}

/** A conversion failure; the path is collected on the way out so the happy path builds no strings. */
class ConvertError {
  readonly message: string;
  readonly path: string[] = [];
  constructor(message: string) {
    this.message = message;
  }
}

function convert(v: unknown): Value {
  switch (typeof v) {
    case 'boolean':
    case 'string':
      return v;
    case 'number':
      if (!Number.isSafeInteger(v)) throw new ConvertError(`${v} is not a 64-bit integer (Cedar has no floats)`);
      return v === 0 ? 0 : v;
    case 'bigint':
      if (v > I64_MAX || v < I64_MIN) throw new ConvertError(`${v} does not fit in a 64-bit integer`);
      return normLong(v);
  }
  if (v === null || v === undefined) throw new ConvertError('JSON `null`s are not allowed in Cedar');
  if (Array.isArray(v)) {
    const items: Value[] = new Array<Value>(v.length);
    for (let i = 0; i < v.length; i++) {
      try {
        items[i] = convert(v[i]);
      } catch (e) {
        if (e instanceof ConvertError) e.path.push(`[${i}]`);
        throw e;
      }
    }
    return CedarSet.of(items);
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    // Like cedar-wasm's untagged JSON enum, a malformed escape is just a record with that key.
    if (keys[0] === '__entity') {
      const e = o.__entity;
      if (isPlainObject(e) && typeof e.type === 'string' && typeof e.id === 'string') {
        if (!isValidTypeName(e.type)) throw new ConvertError(`\`${e.type}\` is not a valid entity type name`);
        return new EntityUid(e.type, e.id);
      }
    } else if (keys[0] === '__extn') {
      const x = o.__extn;
      const rawArgs = isPlainObject(x) ? ('args' in x ? x.args : 'arg' in x ? [x.arg] : undefined) : undefined;
      if (isPlainObject(x) && typeof x.fn === 'string' && Array.isArray(rawArgs)) {
        const args = rawArgs.map((a: unknown) => convert(a));
        try {
          return callExtension(x.fn, args);
        } catch (e) {
          if (e instanceof EvaluationError) throw new ConvertError(e.message);
          throw e;
        }
      }
    }
  }
  return convertRecord(o, keys);
}

function convertRecord(o: Record<string, unknown>, keys: readonly string[]): CedarRecord {
  const map = new Map<string, Value>();
  for (const k of keys) {
    const x = o[k];
    try {
      map.set(k, convert(x));
    } catch (e) {
      if (e instanceof ConvertError) e.path.push(`.${k}`);
      throw e;
    }
  }
  return new CedarRecord(map);
}

function rethrow(e: unknown, where: string): never {
  if (e instanceof ConvertError) fail(where + e.path.reverse().join(''), e.message);
  throw e;
}

export function valueFromJson(v: unknown, where: string): Value {
  try {
    return convert(v);
  } catch (e) {
    rethrow(e, where);
  }
}

export function recordFromJson(o: unknown, where: string): CedarRecord {
  if (!isPlainObject(o)) fail(where, 'expected a JSON object');
  try {
    return convertRecord(o, Object.keys(o));
  } catch (e) {
    rethrow(e, where);
  }
}
