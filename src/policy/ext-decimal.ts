/** The `decimal` extension: fixed point with 4 fractional digits, stored as an i64 of ten-thousandths. */
import { I64_MAX, I64_MIN } from './long.ts';
import { Decimal } from './values.ts';

const RE = /^(-?[0-9]+)\.([0-9]+)$/;

/** Returns the decimal, or an error message (Cedar's wording). */
export function parseDecimal(s: string): Decimal | string {
  const m = RE.exec(s);
  if (!m) return `\`${s}\` is not a well-formed decimal value`;
  const lStr = m[1] as string;
  const rStr = m[2] as string;
  const inRange = (b: bigint): boolean => b <= I64_MAX && b >= I64_MIN;
  const l = BigInt(lStr);
  if (!inRange(l) || !inRange(l * 10000n)) return 'overflow when converting to decimal';
  if (rStr.length > 4) return `too many digits after the decimal in \`${s}\``;
  const r = BigInt(rStr) * 10n ** BigInt(4 - rStr.length);
  const v = lStr.startsWith('-') ? l * 10000n - r : l * 10000n + r;
  if (!inRange(v)) return 'overflow when converting to decimal';
  return new Decimal(v);
}
