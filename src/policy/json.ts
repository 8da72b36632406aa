/**
 * JSON input for entities, contexts and requests. Cedar `Long`s are 64-bit, so numbers beyond 2^53 are
 * read from their source text (JSON.parse's reviver `context.source`, Node ≥ 21) instead of being
 * rounded to a double.
 */
type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

const exactIntegers: Reviver = (_key, value, context) => {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined) {
    if (/^-?[0-9]+$/.test(context.source)) return BigInt(context.source);
  }
  return value;
};

export function parseJsonExact(text: string): unknown {
  return JSON.parse(text, exactIntegers as (this: unknown, key: string, value: unknown) => unknown);
}
