/**
 * Cedar extension functions by name (as they appear in the JSON policy form, where a method call
 * `a.isInRange(b)` is the call `isInRange(a, b)`). Each checks its argument types and arity like Cedar.
 */
import { EvaluationError } from './errors.ts';
import { durationIn, durationSince, offset, parseDatetime, parseDuration, toDate, toTime } from './ext-datetime.ts';
import { parseDecimal } from './ext-decimal.ts';
import { isInRange, isLoopback, isMulticast, parseIp } from './ext-ipaddr.ts';
import type { Long } from './long.ts';
import { DateTime, Decimal, Duration, IpAddr, typeName } from './values.ts';
import type { Value } from './values.ts';

type Ext = { arity: number; fn: (args: Value[]) => Value };

function typeError(expected: string, v: Value): EvaluationError {
  return new EvaluationError(`type error: expected ${expected}, got ${typeName(v)}`);
}

function str(v: Value | undefined): string {
  if (typeof v !== 'string') throw typeError('string', v as Value);
  return v;
}
function ip(v: Value | undefined): IpAddr {
  if (!(v instanceof IpAddr)) throw typeError('ipaddr', v as Value);
  return v;
}
function dec(v: Value | undefined): Decimal {
  if (!(v instanceof Decimal)) throw typeError('decimal', v as Value);
  return v;
}
function dt(v: Value | undefined): DateTime {
  if (!(v instanceof DateTime)) throw typeError('datetime', v as Value);
  return v;
}
function dur(v: Value | undefined): Duration {
  if (!(v instanceof Duration)) throw typeError('duration', v as Value);
  return v;
}

function construct<T>(name: string, parse: (s: string) => T | string): Ext {
  return {
    arity: 1,
    fn: (a) => {
      const r = parse(str(a[0]));
      if (typeof r === 'string') throw new EvaluationError(`error while evaluating \`${name}\` extension function: ${r}`);
      return r as Value;
    },
  };
}

const durationUnit = (unitMs: number): Ext => ({ arity: 1, fn: (a): Long => durationIn(dur(a[0]), unitMs) });

const EXTENSIONS: ReadonlyMap<string, Ext> = new Map<string, Ext>([
  ['ip', construct('ip', parseIp)],
  ['isIpv4', { arity: 1, fn: (a) => !ip(a[0]).v6 }],
  ['isIpv6', { arity: 1, fn: (a) => ip(a[0]).v6 }],
  ['isLoopback', { arity: 1, fn: (a) => isLoopback(ip(a[0])) }],
  ['isMulticast', { arity: 1, fn: (a) => isMulticast(ip(a[0])) }],
  ['isInRange', { arity: 2, fn: (a) => isInRange(ip(a[0]), ip(a[1])) }],
  ['decimal', construct('decimal', parseDecimal)],
  ['lessThan', { arity: 2, fn: (a) => dec(a[0]).scaled < dec(a[1]).scaled }],
  ['lessThanOrEqual', { arity: 2, fn: (a) => dec(a[0]).scaled <= dec(a[1]).scaled }],
  ['greaterThan', { arity: 2, fn: (a) => dec(a[0]).scaled > dec(a[1]).scaled }],
  ['greaterThanOrEqual', { arity: 2, fn: (a) => dec(a[0]).scaled >= dec(a[1]).scaled }],
  ['datetime', construct('datetime', parseDatetime)],
  ['duration', construct('duration', parseDuration)],
  ['offset', { arity: 2, fn: (a) => offset(dt(a[0]), dur(a[1])) }],
  ['durationSince', { arity: 2, fn: (a) => durationSince(dt(a[0]), dt(a[1])) }],
  ['toDate', { arity: 1, fn: (a) => toDate(dt(a[0])) }],
  ['toTime', { arity: 1, fn: (a) => toTime(dt(a[0])) }],
  ['toMilliseconds', durationUnit(1)],
  ['toSeconds', durationUnit(1000)],
  ['toMinutes', durationUnit(60_000)],
  ['toHours', durationUnit(3_600_000)],
  ['toDays', durationUnit(86_400_000)],
]);

export function isExtensionFunction(name: string): boolean {
  return EXTENSIONS.has(name);
}

/** The implementation of one extension function, arity-checked. */
export function extensionFunction(name: string): (args: Value[]) => Value {
  const ext = EXTENSIONS.get(name);
  if (ext === undefined) return () => {
    throw new EvaluationError(`extension function \`${name}\` does not exist`);
  };
  const { arity, fn } = ext;
  return (args) => {
    if (args.length !== arity) {
      throw new EvaluationError(`wrong number of arguments provided to extension function \`${name}\`: expected ${arity}, got ${args.length}`);
    }
    return fn(args);
  };
}

export function callExtension(name: string, args: Value[]): Value {
  return extensionFunction(name)(args);
}
