/**
 * The `datetime` and `duration` extensions (Cedar RFC 0080): datetimes are i64 milliseconds since the
 * Unix epoch, durations i64 milliseconds. Parsing follows Cedar's grammar exactly.
 */
import { I64_MAX, I64_MIN, checkedLong, normLong } from './long.ts';
import type { Long } from './long.ts';
import { DateTime, Duration } from './values.ts';

const DURATION_RE = /^-?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$/;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})/;
const HMS_RE = /^T([0-9]{2}):([0-9]{2}):([0-9]{2})/;
const MS_OFFSET_RE = /^(\.([0-9]{3}))?(Z|((\+|-)([0-9]{2})([0-9]{2})))$/;

const DAY_MS = 86_400_000;

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

export function parseDatetime(s: string): DateTime | string {
  const dm = DATE_RE.exec(s);
  if (!dm) return 'invalid date pattern';
  const y = Number(dm[1]);
  const mo = Number(dm[2]);
  const d = Number(dm[3]);
  const dateOk = mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth(y, mo);
  const days = daysFromCivil(y, mo, d);
  if (dm[0].length === s.length) return dateOk ? new DateTime(days * DAY_MS) : `invalid date: ${dm[0]}`;
  const rest = s.slice(dm[0].length);
  const hm = HMS_RE.exec(rest);
  if (!hm) return 'invalid hour/minute/second pattern';
  const tail = MS_OFFSET_RE.exec(rest.slice(hm[0].length));
  if (!tail) return 'invalid millisecond and/or offset pattern';
  if (!dateOk) return `invalid date: ${dm[0]}`;
  const h = Number(hm[1]);
  const mi = Number(hm[2]);
  const sec = Number(hm[3]);
  if (h > 23 || mi > 59 || sec > 59) return `invalid hour/minute/second: ${hm[0].slice(1)}`;
  const ms = tail[2] === undefined ? 0 : Number(tail[2]);
  let offsetSec = 0;
  if (tail[4] !== undefined) {
    const oh = Number(tail[6]);
    const om = Number(tail[7]);
    if (oh >= 24 || om >= 60) return `invalid offset range: ${oh}${om}`;
    offsetSec = (oh * 3600 + om * 60) * (tail[5] === '+' ? 1 : -1);
  }
  return new DateTime(days * DAY_MS + ((h * 60 + mi) * 60 + sec - offsetSec) * 1000 + ms);
}

export function parseDuration(s: string): Duration | string {
  if (s === '' || s === '-') return 'invalid duration pattern';
  const m = DURATION_RE.exec(s);
  if (!m) return 'invalid duration pattern';
  const neg = s.startsWith('-');
  const num = (i: number): bigint => (m[i] === undefined ? 0n : BigInt(m[i] as string));
  // Same-signed terms: Cedar adds them with checked arithmetic, which overflows exactly when a term
  // or the running sum leaves i64.
  const terms: [bigint, bigint][] = [
    [num(10), 1n],
    [num(8), 1000n],
    [num(6), 60_000n],
    [num(4), 3_600_000n],
    [num(2), 86_400_000n],
  ];
  let total = 0n;
  for (const [i, [n, mul]] of terms.entries()) {
    if (i === 0) {
      total = neg ? -n : n;
      if (total > I64_MAX || total < I64_MIN) return 'Duration overflows internal representation';
      continue;
    }
    if (n > I64_MAX || n * mul > I64_MAX) return 'Duration overflows internal representation';
    total = neg ? total - n * mul : total + n * mul;
    if (total > I64_MAX || total < I64_MIN) return 'Duration overflows internal representation';
  }
  return new Duration(normLong(total));
}

const big = (l: Long): bigint => BigInt(l);

export function offset(dt: DateTime, d: Duration): DateTime {
  return new DateTime(checkedLong(big(dt.ms) + big(d.ms), 'add an offset to a datetime'));
}

export function durationSince(a: DateTime, b: DateTime): Duration {
  return new Duration(checkedLong(big(a.ms) - big(b.ms), 'compute the duration between datetimes'));
}

export function toDate(dt: DateTime): DateTime {
  const ms = big(dt.ms);
  const day = BigInt(DAY_MS);
  const rem = ((ms % day) + day) % day;
  return new DateTime(checkedLong(ms - rem, 'compute the date of a datetime'));
}

export function toTime(dt: DateTime): Duration {
  const ms = big(dt.ms);
  const day = BigInt(DAY_MS);
  return new Duration(normLong(((ms % day) + day) % day));
}

/** Truncating division, as Rust's i64 `/`. */
export function durationIn(d: Duration, unitMs: number): Long {
  // Subtracting the (exact) remainder first keeps the float division exact.
  if (typeof d.ms === 'number') return (d.ms - (d.ms % unitMs)) / unitMs + 0;
  return normLong(d.ms / BigInt(unitMs));
}
