/**
 * JSON Canonicalization Scheme (RFC 8785). The audit chain hashes this encoding, so two
 * implementations that agree on the data agree on the hash.
 *
 * RFC 8785 §3.2.2: primitives are serialized as ECMAScript's JSON.stringify does (numbers in their
 * shortest round-trip form, strings with its escaping); §3.2.3: object members are sorted by the
 * UTF-16 code units of their names, which is JavaScript's default string ordering.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('RFC 8785 forbids NaN and Infinity');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      throw new TypeError('RFC 8785 has no BigInt; encode it as a string');
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, member]) => member !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([key, member]) => `${JSON.stringify(key)}:${canonicalJson(member)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`cannot canonicalize a ${typeof value}`);
  }
}
