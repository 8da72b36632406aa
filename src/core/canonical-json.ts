/**
 * JSON Canonicalization Scheme (RFC 8785). The audit chain hashes this encoding, so two
 * implementations that agree on the data agree on the hash.
 *
 * RFC 8785 §3.2.2: primitives are serialized as ECMAScript's JSON.stringify does (numbers in their
 * shortest round-trip form, strings with its escaping); §3.2.3: object members are sorted by the
 * UTF-16 code units of their names, which is JavaScript's default string ordering.
 */
export function canonicalJson(value: unknown): string {
  // Built by string concatenation (V8 ropes), without the entries/map/join arrays of the obvious
  // version: every audited gateway call is canonicalized, and the garbage showed up as GC pauses.
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('RFC 8785 forbids NaN and Infinity');
      // ECMAScript's Number::toString, as JSON.stringify uses it (and -0 becomes "0" in both).
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      throw new TypeError('RFC 8785 has no BigInt; encode it as a string');
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          out += item === undefined ? 'null' : canonicalJson(item);
        }
        return `${out}]`;
      }
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      const record = value as Record<string, unknown>;
      // The default sort compares UTF-16 code units, exactly what §3.2.3 asks for.
      const keys = Object.keys(record).sort();
      let out = '{';
      for (const key of keys) {
        const member = record[key];
        if (member === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(key)}:${canonicalJson(member)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`cannot canonicalize a ${typeof value}`);
  }
}
