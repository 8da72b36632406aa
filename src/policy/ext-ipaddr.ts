/**
 * The `ipaddr` extension, parsed exactly as Cedar does (Rust `std::net` address syntax: no leading zeros
 * in IPv4 octets, no IPv4 embedded in IPv6; prefix without leading zeros, ≤ 32 / ≤ 128).
 */
import { IpAddr } from './values.ts';

const MAX_LEN = 43;

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^[0-9]{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function parseV6(s: string): bigint | undefined {
  // Embedded IPv4 forms are rejected by Cedar before parsing, so only hex groups remain.
  const groupRe = /^[0-9a-fA-F]{1,4}$/;
  const readGroups = (text: string, limit: number): number[] | undefined => {
    if (text === '') return [];
    const parts = text.split(':');
    if (parts.length > limit) return undefined;
    const out: number[] = [];
    for (const p of parts) {
      if (!groupRe.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  let groups: number[];
  const dbl = s.indexOf('::');
  if (dbl < 0) {
    const g = readGroups(s, 8);
    if (g?.length !== 8) return undefined;
    groups = g;
  } else {
    const head = readGroups(s.slice(0, dbl), 7);
    if (head === undefined) return undefined;
    const tail = readGroups(s.slice(dbl + 2), 7 - head.length);
    if (tail === undefined) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

function parsePrefix(s: string, max: number, maxLen: number): number | undefined {
  if (s.length > maxLen || !/^[0-9]+$/.test(s) || (s.length > 1 && s[0] === '0')) return undefined;
  const v = Number(s);
  return v <= max ? v : undefined;
}

function count(s: string, c: string): number {
  let n = 0;
  for (const ch of s) if (ch === c) n++;
  return n;
}

/**
 * Addresses parsed lately: every gateway call puts the client's address in its context, and the same
 * few addresses come again and again. IpAddr is immutable, so one instance can serve every request.
 */
const recent = new Map<string, IpAddr>();
const RECENT_MAX = 1024;

/** Returns the address, or an error message. */
export function parseIp(s: string): IpAddr | string {
  const known = recent.get(s);
  if (known) return known;
  const parsed = parseIpUncached(s);
  if (typeof parsed !== 'string') {
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(s, parsed);
  }
  return parsed;
}

function parseIpUncached(s: string): IpAddr | string {
  if (s.length > MAX_LEN) return `error parsing IP address from string \`${s}\`: string length is too large`;
  if (count(s, ':') >= 2 && count(s, '.') >= 2) return `error parsing IP address from string: IPv4 embedded in IPv6 is not accepted: \`${s}\``;
  const slash = s.indexOf('/');
  const addrStr = slash < 0 ? s : s.slice(0, slash);
  const v4 = parseV4(addrStr);
  const v6 = v4 === undefined ? parseV6(addrStr) : undefined;
  if (v4 === undefined && v6 === undefined) return `invalid IP address: ${s}`;
  const isV6 = v4 === undefined;
  let prefix = isV6 ? 128 : 32;
  if (slash >= 0) {
    const p = parsePrefix(s.slice(slash + 1), prefix, isV6 ? 3 : 2);
    if (p === undefined) return `error parsing prefix of \`${s}\``;
    prefix = p;
  }
  return new IpAddr(isV6, (v4 ?? v6) as bigint, prefix);
}

const V4_ALL = (1n << 32n) - 1n;
const V6_ALL = (1n << 128n) - 1n;

function bounds(ip: IpAddr): [bigint, bigint] {
  const bits = ip.v6 ? 128n : 32n;
  const all = ip.v6 ? V6_ALL : V4_ALL;
  const host = (1n << (bits - BigInt(ip.prefix))) - 1n;
  const net = all ^ host;
  return [ip.addr & net, ip.addr | host];
}

export function isLoopback(ip: IpAddr): boolean {
  // Rust `is_loopback`: 127.0.0.0/8 or ::1, and the whole range must stay inside it.
  if (ip.v6) return ip.addr === 1n && ip.prefix >= 128;
  return ip.addr >> 24n === 127n && ip.prefix >= 8;
}

export function isMulticast(ip: IpAddr): boolean {
  if (ip.v6) return ip.addr >> 120n === 0xffn && ip.prefix >= 8;
  return ip.addr >> 28n === 0xen && ip.prefix >= 4;
}

export function isInRange(child: IpAddr, range: IpAddr): boolean {
  if (child.v6 !== range.v6) return false;
  const [cn, cb] = bounds(child);
  const [rn, rb] = bounds(range);
  return rn <= cn && cb <= rb;
}
