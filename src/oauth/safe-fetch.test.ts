import fc from 'fast-check';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress, safeFetchJson } from './safe-fetch.ts';

/** IPv4 ranges a server-side fetch must not reach, as [first address as a number, prefix length]. */
const PRIVATE_V4: [number, number][] = [
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
].map(([net, prefix]) => [toNumber(net as string), prefix as number]);

function toNumber(ipv4: string): number {
  return ipv4.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}
const dotted = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
const hex = (n: number, pad = false) => {
  const [high, low] = [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
  return pad ? `${high.padStart(4, '0')}:${low.padStart(4, '0')}` : `${high}:${low}`;
};

const privateV4 = fc.constantFrom(...PRIVATE_V4).chain(([base, prefix]) => fc.integer({ min: 0, max: 2 ** (32 - prefix) - 1 }).map((host) => base + host));
const anyV4 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const suffix = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 5, maxLength: 5 }).map((groups) => groups.map((g) => g.toString(16)).join(':'));

/** Every way an IPv6 address can carry the IPv4 address `n` (and the spellings of each). */
const mapped = (n: number) => [`::ffff:${dotted(n)}`, `::FFFF:${dotted(n)}`, `::ffff:${hex(n)}`, `0:0:0:0:0:ffff:${dotted(n)}`, `0000:0000:0000:0000:0000:ffff:${hex(n, true)}`, `::ffff:${hex(n, true).toUpperCase()}`];
const compatible = (n: number) => [`::${dotted(n)}`, `::${hex(n)}`, `0:0:0:0:0:0:${dotted(n)}`];
const translated = (n: number) => [`::ffff:0:${dotted(n)}`, `::ffff:0:${hex(n)}`];
const nat64 = (n: number) => [`64:ff9b::${dotted(n)}`, `64:ff9b::${hex(n)}`, `64:ff9b:1::${hex(n)}`];
const sixToFour = (n: number, rest: string) => [`2002:${hex(n)}::`, `2002:${hex(n)}::1`, `2002:${hex(n)}:${rest}`, `2002:${hex(n, true).toUpperCase()}::1`];

/** What a URL parser makes of the address (WHATWG serialises IPv6 in its shortest hex form). */
const viaUrl = (address: string) => new URL(`https://[${address}]/`).hostname.slice(1, -1);

describe('isPrivateAddress (SSRF guard)', () => {
  it('refuses every private IPv4 address in every IPv6 form that carries it, however spelt', () => {
    fc.assert(
      fc.property(privateV4, suffix, (n, rest) => {
        expect(isPrivateAddress(dotted(n))).toBe(true);
        for (const form of [...mapped(n), ...compatible(n), ...translated(n), ...nat64(n), ...sixToFour(n, rest)]) {
          expect(isPrivateAddress(form), form).toBe(true);
          expect(isPrivateAddress(viaUrl(form)), viaUrl(form)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('judges IPv4-mapped and 6to4 addresses by the IPv4 address they carry; refuses IPv4-compatible, translated and NAT64 forms as a whole', () => {
    fc.assert(
      fc.property(anyV4, suffix, (n, rest) => {
        const expected = isPrivateAddress(dotted(n));
        for (const form of [...mapped(n), ...sixToFour(n, rest)]) expect(isPrivateAddress(form), form).toBe(expected);
        for (const form of [...compatible(n), ...translated(n), ...nat64(n)]) expect(isPrivateAddress(form), form).toBe(true);
      }),
      { numRuns: 500 },
    );
    expect(isPrivateAddress('::ffff:8.8.8.8')).toBe(false);
    expect(isPrivateAddress('::ffff:808:808')).toBe(false);
    expect(isPrivateAddress('2002:808:808::1')).toBe(false);
    expect(isPrivateAddress('2606:4700::1111')).toBe(false);
  });

  it('does not depend on how an IPv6 address is spelt', () => {
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        expect(isPrivateAddress(address)).toBe(isPrivateAddress(viaUrl(address)));
        expect(isPrivateAddress(address)).toBe(isPrivateAddress(address.toUpperCase()));
      }),
      { numRuns: 1000 },
    );
  });

  it('fails closed on anything that is not an IP address, and never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        const result = isPrivateAddress(text);
        if (!/^[\d.]+$|:/.test(text)) expect(result).toBe(true);
      }),
    );
    for (const text of ['', 'localhost', '127.1', '0x7f.0.0.1', '::ffff:01.2.3.4', '1::2:3:4:5:6:7:8', 'fe80::1%eth0', '[::1]']) expect(isPrivateAddress(text), text).toBe(true);
    for (const text of ['::', '::1', 'fc00::1', 'fe80::1', 'ff02::1', '2001::1', '2001:db8::1', '100::1', 'fec0::1']) expect(isPrivateAddress(text), text).toBe(true);
  });

  it('safeFetchJson refuses an IPv6 literal that carries a private IPv4 address before connecting', async () => {
    for (const host of ['::127.0.0.1', '::a9fe:a9fe', '2002:7f00:1::', '2002:a9fe:a9fe::1', '::ffff:7f00:1', '64:ff9b::7f00:1']) {
      await expect(safeFetchJson(`https://[${host}]/jwks`, { allowHttp: false, allowPrivateNetworks: false }), host).rejects.toMatchObject({ code: 'FETCH_ADDRESS_FORBIDDEN', status: 400 });
    }
  });
});

describe('safeFetchJson', () => {
  /** A loopback JSON server; `trickle` sends a byte at a time, so no idle timeout ever fires. */
  async function serve(trickle: boolean): Promise<{ port: number; close(): void }> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!trickle) return void res.end('{"keys":[]}');
      const timer = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const close = () => {
      server.closeAllConnections();
      server.close();
    };
    return { port: (server.address() as AddressInfo).port, close };
  }

  it('fetches from a host name, connecting to the address it checked (Node asks the pinned lookup for every address)', async () => {
    const server = await serve(false);
    try {
      expect(await safeFetchJson(`http://localhost:${server.port}/jwks`, { allowHttp: true, allowPrivateNetworks: true })).toEqual({ keys: [] });
    } finally {
      server.close();
    }
  });

  it('gives up after its timeout even when the server keeps sending a byte now and then', async () => {
    const server = await serve(true);
    try {
      await expect(safeFetchJson(`http://127.0.0.1:${server.port}/jwks`, { allowHttp: true, allowPrivateNetworks: true, timeoutMs: 300 })).rejects.toMatchObject({ code: 'FETCH_FAILED', message: 'remote fetch took longer than 300 ms' });
    } finally {
      server.close();
    }
  });
});
