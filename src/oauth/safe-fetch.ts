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
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged by its IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isPrivateAddress(mapped[1]!);
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
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
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true }).catch(() => []);
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
        timeout: options.timeoutMs ?? 5000,
        lookup: (_hostname, _opts, callback) => (callback as (e: null, a: string, f: number) => void)(null, pinned.address, pinned.family),
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
    req.on('error', (error) => reject(new MandateError('FETCH_FAILED', `remote fetch failed: ${error.message}`, 502)));
    req.end();
  });
}
