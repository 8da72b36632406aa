/**
 * Cedar `Long`: exact signed 64-bit integers. A value is a JS `number` while it is a safe integer (the
 * common case, so the hot path never allocates a BigInt) and a `bigint` only beyond ±(2^53 − 1). Keeping
 * that representation canonical lets equality stay `===`.
 */
import { EvaluationError } from './errors.ts';

export type Long = number | bigint;

export const I64_MAX = 9223372036854775807n;
export const I64_MIN = -9223372036854775808n;

/** Canonical form of an exact integer already known to be within i64 range. */
export function normLong(b: bigint): Long {
  return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
}

/** Canonical Long from an exact bigint, or an overflow error. */
export function checkedLong(b: bigint, what: string): Long {
  if (b > I64_MAX || b < I64_MIN) throw new EvaluationError(`integer overflow while attempting to ${what}`);
  return normLong(b);
}

export function addLong(a: Long, b: Long): Long {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (Number.isSafeInteger(r)) return r;
  }
  return checkedLong(BigInt(a) + BigInt(b), `add \`${a}\` and \`${b}\``);
}

export function subLong(a: Long, b: Long): Long {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (Number.isSafeInteger(r)) return r;
  }
  return checkedLong(BigInt(a) - BigInt(b), `subtract \`${b}\` from \`${a}\``);
}

export function mulLong(a: Long, b: Long): Long {
  if (typeof a === 'number' && typeof b === 'number') {
    // If the exact product is within ±2^53 the float product is exact; otherwise it lands outside the
    // safe range and we redo it exactly. `-0` (e.g. -1 * 0) is normalised to 0.
    const r = a * b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  return checkedLong(BigInt(a) * BigInt(b), `multiply \`${a}\` by \`${b}\``);
}

export function negLong(a: Long): Long {
  if (typeof a === 'number') return a === 0 ? 0 : -a;
  return checkedLong(-a, `negate \`${a}\``);
}
