/**
 * Runtime representation of Cedar values. Primitives map to JS primitives (Bool → boolean, String →
 * string, Long → number | bigint, see long.ts); entity references, sets, records and extension values are
 * small classes so a type test is one `typeof` or `instanceof`.
 */
import type { Long } from './long.ts';

export class EntityUid {
  readonly type: string;
  readonly id: string;
  /**
   * `Type::"id"`: unique per (type, id) because a valid type name never contains `"` (the first `"`
   * ends the type), so the id needs no escaping. Used for equality and as map key.
   */
  readonly key: string;
  constructor(type: string, id: string) {
    this.type = type;
    this.id = id;
    this.key = `${type}::"${id}"`;
  }
  toJSON(): { type: string; id: string } {
    return { type: this.type, id: this.id };
  }
}

/** A Cedar set: deduplicated items, equality ignores order. */
export class CedarSet {
  readonly items: readonly Value[];
  #keys: Set<string> | undefined;
  constructor(items: readonly Value[]) {
    this.items = items;
  }
  /** Builds a set from values that may contain duplicates. */
  static of(values: readonly Value[]): CedarSet {
    if (values.length < 2) return new CedarSet(values);
    const seen = new Set<string>();
    const out: Value[] = [];
    for (const v of values) {
      const k = valueKey(v);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(v);
      }
    }
    const s = new CedarSet(out);
    s.#keys = seen;
    return s;
  }
  get size(): number {
    return this.items.length;
  }
  has(v: Value): boolean {
    const items = this.items;
    // Small sets (the common case) are scanned; large ones get a lazily built key index.
    if (items.length <= 8) {
      for (const item of items) if (valueEquals(item, v)) return true;
      return false;
    }
    this.#keys ??= new Set(items.map(valueKey));
    return this.#keys.has(valueKey(v));
  }
}

export class CedarRecord {
  readonly map: ReadonlyMap<string, Value>;
  constructor(map: ReadonlyMap<string, Value>) {
    this.map = map;
  }
}

export class IpAddr {
  readonly v6: boolean;
  /** Address bits (32 for IPv4, 128 for IPv6). */
  readonly addr: bigint;
  readonly prefix: number;
  constructor(v6: boolean, addr: bigint, prefix: number) {
    this.v6 = v6;
    this.addr = addr;
    this.prefix = prefix;
  }
}

export class Decimal {
  /** Value × 10^4, within i64. */
  readonly scaled: bigint;
  constructor(scaled: bigint) {
    this.scaled = scaled;
  }
}

export class DateTime {
  /** Milliseconds since the Unix epoch, an i64. */
  readonly ms: Long;
  constructor(ms: Long) {
    this.ms = ms;
  }
}

export class Duration {
  /** Milliseconds, an i64. */
  readonly ms: Long;
  constructor(ms: Long) {
    this.ms = ms;
  }
}

export type ExtensionValue = IpAddr | Decimal | DateTime | Duration;
export type Value = boolean | Long | string | EntityUid | CedarSet | CedarRecord | ExtensionValue;

export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof EntityUid) return b instanceof EntityUid && a.key === b.key;
  if (a instanceof CedarSet) {
    if (!(b instanceof CedarSet) || a.size !== b.size) return false;
    for (const item of a.items) if (!b.has(item)) return false;
    return true;
  }
  if (a instanceof CedarRecord) {
    if (!(b instanceof CedarRecord) || a.map.size !== b.map.size) return false;
    for (const [k, v] of a.map) {
      const w = b.map.get(k);
      if (w === undefined || !valueEquals(v, w)) return false;
    }
    return true;
  }
  if (a instanceof IpAddr) return b instanceof IpAddr && a.v6 === b.v6 && a.addr === b.addr && a.prefix === b.prefix;
  if (a instanceof Decimal) return b instanceof Decimal && a.scaled === b.scaled;
  if (a instanceof DateTime) return b instanceof DateTime && a.ms === b.ms;
  if (a instanceof Duration) return b instanceof Duration && a.ms === b.ms;
  return false;
}

/** A canonical string per value: equal values ⇔ equal keys (sets and records are order-independent). */
export function valueKey(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return v ? 'T' : 'F';
    case 'number':
    case 'bigint':
      return `L${v}`;
    case 'string':
      return `S${JSON.stringify(v)}`;
  }
  if (v instanceof EntityUid) return `E${v.key}`;
  if (v instanceof CedarSet) return `[${v.items.map(valueKey).sort().join(',')}]`;
  if (v instanceof CedarRecord) {
    const parts = [...v.map].map(([k, x]) => `${JSON.stringify(k)}:${valueKey(x)}`);
    return `{${parts.sort().join(',')}}`;
  }
  if (v instanceof IpAddr) return `I${v.v6 ? 6 : 4}/${v.addr}/${v.prefix}`;
  if (v instanceof Decimal) return `D${v.scaled}`;
  if (v instanceof DateTime) return `T${v.ms}`;
  return `U${v.ms}`;
}

export function typeName(v: Value): string {
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
    case 'bigint':
      return 'long';
    case 'string':
      return 'string';
  }
  if (v instanceof EntityUid) return `(entity of type \`${v.type}\`)`;
  if (v instanceof CedarSet) return 'set';
  if (v instanceof CedarRecord) return 'record';
  if (v instanceof IpAddr) return 'ipaddr';
  if (v instanceof Decimal) return 'decimal';
  if (v instanceof DateTime) return 'datetime';
  return 'duration';
}
