import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { MandateError } from '../core/errors.ts';

/** Address ranges a server-side fetch must not reach unless allowed (SSRF): RFC 1918, loopback, link-local, CGNAT, ULA, … */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  // IPv4-compatible (RFC 4291 §2.5.5.1, deprecated; includes :: and ::1): nothing legitimate lives there,
  // and a stack that still routes them reaches the embedded IPv4 address.
  ['::', 96],
  // IPv4-translated (SIIT, RFC 2765 §2.1): reaches whatever IPv4 address the translator maps it to.
  ['::ffff:0:0:0', 96],
  // NAT64 (RFC 6052 §2.1 well-known prefix, RFC 8215 local-use prefix): refused as a whole, since the
  // translator may be local and reaches the embedded IPv4 address from inside the network. On a NAT64-only
  // network, MANDATE_FEDERATION_ALLOW_PRIVATE_NETWORKS lifts the guard.
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard-only (RFC 6666)
  ['2001::', 32], // Teredo (RFC 4380): the client's IPv4 address is embedded, obfuscated
  ['2001:db8::', 32], // documentation (RFC 3849)
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10], // site-local (RFC 3879, deprecated)
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

/** The eight 16-bit groups of an IPv6 address Node accepts (any spelling: `::`, embedded dotted IPv4, zone id). */
function ipv6Groups(address: string): number[] | undefined {
  const text = address.split('%')[0]!;
  if (isIP(text) !== 6) return undefined;
  const groupsOf = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((piece) => {
          if (!piece.includes('.')) return [parseInt(piece, 16)];
          const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = text.indexOf('::');
  let groups: number[];
  if (gap < 0) groups = groupsOf(text);
  else {
    const left = groupsOf(text.slice(0, gap));
    const right = groupsOf(text.slice(gap + 2));
    groups = [...left, ...new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0), ...right];
  }
  // isIP has validated the spelling; this only guards the arithmetic above.
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const dotted = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;

/**
 * True when a server-side fetch must not connect to `address` (SSRF guard). Anything that is not a valid IP
 * address is private (fail closed). IPv6 forms that carry an IPv4 address are judged by that address:
 * IPv4-mapped `::ffff:a.b.c.d` in any spelling (RFC 4291 §2.5.5.2) and 6to4 `2002:AABB:CCDD::/48`
 * (RFC 3056 §2); IPv4-compatible, IPv4-translated, NAT64 and Teredo addresses are refused as a whole.
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  const groups = ipv6Groups(address);
  if (!groups) return true;
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) return isPrivateAddress(dotted(g6, g7));
  if (g0 === 0x2002) return isPrivateAddress(dotted(g1, g2));
  return PRIVATE.check(groups.map((g) => g.toString(16)).join(':'), 'ipv6');
}

/** The host's addresses, or none when it cannot be resolved before the deadline. */
function resolveWithin(host: string, deadline: AbortSignal): Promise<{ address: string; family: number }[]> {
  return new Promise((resolve) => {
    const give = () => resolve([]);
    deadline.addEventListener('abort', give, { once: true });
    lookup(host, { all: true }).then(
      (addresses) => {
        deadline.removeEventListener('abort', give);
        resolve(addresses);
      },
      () => {
        deadline.removeEventListener('abort', give);
        resolve([]);
      },
    );
  });
}

export interface SafeFetchOptions {
  allowHttp: boolean;
  allowPrivateNetworks: boolean;
  timeoutMs?: number;
  maxBytes?: number;
}

/**
 * GET a small JSON document from a URL an admin configured (a JWKS): https only (http in dev), no
 * redirects, a timeout, a size cap, and the resolved address checked against private ranges and then
 * pinned for the connection, so DNS rebinding cannot swap in an internal address after the check.
 */
export async function safeFetchJson(url: string, options: SafeFetchOptions): Promise<unknown> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new MandateError('FETCH_URL_INVALID', 'not a URL', 400);
  }
  if (target.protocol !== 'https:' && !(options.allowHttp && target.protocol === 'http:')) throw new MandateError('FETCH_URL_INSECURE', 'remote keys must be fetched over https', 400);
  if (target.username || target.password) throw new MandateError('FETCH_URL_INVALID', 'credentials in URLs are not allowed', 400);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = options.timeoutMs ?? 5000;
  // One deadline for the whole fetch, name resolution included.
  const deadline = AbortSignal.timeout(timeoutMs);
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveWithin(host, deadline);
  if (deadline.aborted) throw new MandateError('FETCH_FAILED', `remote fetch took longer than ${timeoutMs} ms`, 502);
  if (addresses.length === 0) throw new MandateError('FETCH_UNREACHABLE', `cannot resolve ${host}`, 502);
  if (!options.allowPrivateNetworks && addresses.some((a) => isPrivateAddress(a.address))) throw new MandateError('FETCH_ADDRESS_FORBIDDEN', `${host} resolves to a private address`, 400);
  const pinned = addresses[0]!;
  const maxBytes = options.maxBytes ?? 256 * 1024;
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'GET',
        headers: { accept: 'application/json, application/jwk-set+json' },
        // Idle timeout; the whole fetch is bounded by the deadline below.
        timeout: timeoutMs,
        // The checked address, whichever way Node asks for it: with `all` (Node's connect uses it for
        // happy eyeballs) the answer is a list, without it a single address.
        lookup: (_hostname, lookupOptions, callback) => {
          const answer = callback as (error: null, address: string | { address: string; family: number }[], family?: number) => void;
          if ((lookupOptions as { all?: boolean }).all) answer(null, [{ address: pinned.address, family: pinned.family }]);
          else answer(null, pinned.address, pinned.family);
        },
        signal: deadline,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new MandateError('FETCH_FAILED', `remote answered ${res.statusCode}`, 502));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            req.destroy();
            reject(new MandateError('FETCH_TOO_LARGE', `remote document exceeds ${maxBytes} bytes`, 502));
          } else chunks.push(chunk);
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new MandateError('FETCH_FAILED', 'remote document is not JSON', 502));
          }
        });
        res.on('error', () => reject(new MandateError('FETCH_FAILED', 'remote connection failed', 502)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => reject(new MandateError('FETCH_FAILED', error.name === 'AbortError' ? `remote fetch took longer than ${timeoutMs} ms` : `remote fetch failed: ${error.message}`, 502)));
    req.end();
  });
}
