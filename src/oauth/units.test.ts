import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../authn/index.ts';
import { DpopNonces, normalizeHtu, verifyDpopProof } from './dpop.ts';
import { TokenError, wwwAuthenticate } from './errors.ts';
import { ruleMatches } from './federation.ts';
import { protectedResourceMetadataUrl } from './metadata.ts';
import { intersectScopes } from './token-exchange.ts';
import { actChainOf } from './verifier.ts';

describe('token exchange scope intersection', () => {
  it('RFC8693-2.1 grants only what was asked ∩ delegated ∩ allowed ∩ held', () => {
    expect(intersectScopes(['a', 'b', 'x'], ['a', 'b', 'c'], ['a', 'b'], ['b', 'a'])).toEqual(['a', 'b']);
    expect(intersectScopes(undefined, ['a', 'b'], ['b'])).toEqual(['b']);
    fc.assert(
      fc.property(fc.array(fc.constantFrom<string>('a', 'b', 'c', 'd')), fc.array(fc.constantFrom<string>('a', 'b', 'c')), fc.array(fc.constantFrom<string>('b', 'c', 'd')), (req, del, allowed) => {
        const out = intersectScopes(req, del, allowed);
        expect(out.every((s) => req.includes(s) && del.includes(s) && allowed.includes(s))).toBe(true);
      }),
    );
  });
});

describe('act chains', () => {
  it('RFC8693-4.1 lists the current actor first, then earlier actors', () => {
    expect(actChainOf({ sub: 'agt_b', act: { sub: 'agt_a' } })).toEqual(['agt_b', 'agt_a']);
    expect(actChainOf(undefined)).toEqual([]);
    expect(actChainOf({ sub: 1 })).toEqual([]);
    const deep: Record<string, unknown> = { sub: 'x' };
    let cursor = deep;
    for (let i = 0; i < 100; i++) cursor = (cursor.act = { sub: `a${i}` }) as Record<string, unknown>;
    expect(actChainOf(deep)).toHaveLength(16);
  });
});

describe('DPoP proofs', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const proof = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ htm: 'GET', htu: 'https://rs.example/x', jti: crypto.randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk, ...header }).sign(privateKey);

  it('RFC9449-4.3 accepts a well-formed proof and refuses each broken check', async () => {
    const ok = await verifyDpopProof(await proof({}), { method: 'GET', url: 'https://RS.example/x?q=1' });
    expect(ok.jkt).toBeTruthy();
    const refused = async (p: Promise<string>, expected: Partial<Parameters<typeof verifyDpopProof>[1]> = {}) =>
      expect(verifyDpopProof(await p, { method: 'GET', url: 'https://rs.example/x', ...expected })).rejects.toBeInstanceOf(TokenError);
    await refused(proof({ htm: 'POST' }));
    await refused(proof({ htu: 'https://rs.example/y' }));
    await refused(proof({ iat: Math.floor(Date.now() / 1000) - 3600 }));
    await refused(proof({}, { typ: 'JWT' }));
    await refused(proof({}), { accessToken: 'token' });
    await refused(proof({ ath: 'wrong' }), { accessToken: 'token' });
    await refused(proof({}, { jwk: { ...jwk, d: 'private' } }));
    const nonces = new DpopNonces(new Uint8Array(32).fill(1));
    await expect(verifyDpopProof(await proof({}), { method: 'GET', url: 'https://rs.example/x', nonces, requireNonce: true })).rejects.toMatchObject({ code: 'DPOP_NONCE_REQUIRED' });
    await expect(verifyDpopProof(await proof({ nonce: nonces.current() }), { method: 'GET', url: 'https://rs.example/x', nonces, requireNonce: true })).resolves.toBeTruthy();
  });

  it('never throws anything but a TokenError on arbitrary input', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 400 }), async (value) => {
        await verifyDpopProof(value, { method: 'GET', url: 'https://rs.example/x' }).catch((error) => expect(error).toBeInstanceOf(TokenError));
      }),
    );
  });

  it('nonces are valid for their slot and the next, not after', () => {
    let now = 1_000_000_000_000;
    const nonces = new DpopNonces(new Uint8Array(32).fill(2), { slotSeconds: 300, now: () => now });
    const nonce = nonces.current();
    expect(nonces.valid(nonce)).toBe(true);
    now += 300_000;
    expect(nonces.valid(nonce)).toBe(true);
    now += 300_000;
    expect(nonces.valid(nonce)).toBe(false);
    expect(nonces.valid(42)).toBe(false);
  });

  it('htu ignores query and fragment but keeps the path case', () => {
    expect(normalizeHtu('HTTPS://Example.COM:443/A?b#c')).toBe('https://example.com/A');
    expect(normalizeHtu('not a url')).toBeUndefined();
  });
});

describe('federation claim rules', () => {
  it('match exact values and prefixes', () => {
    const rule = { claims: { repository: 'acme/deploy', ref: 'refs/tags/v*' }, identityId: 'wkl_x', scopes: [] };
    expect(ruleMatches(rule, { repository: 'acme/deploy', ref: 'refs/tags/v1.2' })).toBe(true);
    expect(ruleMatches(rule, { repository: 'acme/deploy', ref: 'refs/heads/main' })).toBe(false);
    expect(ruleMatches(rule, { repository: 'acme/deploy2', ref: 'refs/tags/v1' })).toBe(false);
    expect(ruleMatches(rule, { ref: 'refs/tags/v1' })).toBe(false);
  });
});

describe('challenges and metadata', () => {
  it('RFC6750-3 and RFC9728-5.1 WWW-Authenticate carries the error and the metadata pointer', () => {
    const header = wwwAuthenticate(new TokenError('TOKEN_EXPIRED', 'gone "now"'), { resourceMetadataUrl: 'https://h/.well-known/oauth-protected-resource/mcp' });
    expect(header).toBe(`Bearer error="invalid_token", error_description="gone 'now'", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp"`);
    expect(new TokenError('TOKEN_SCOPE_INSUFFICIENT', 'x').status).toBe(403);
    expect(protectedResourceMetadataUrl('https://h.example/mcp/github/')).toBe('https://h.example/.well-known/oauth-protected-resource/mcp/github');
    expect(protectedResourceMetadataUrl('https://h.example')).toBe('https://h.example/.well-known/oauth-protected-resource');
  });
});

describe('login rate limiter', () => {
  it('allows max attempts per window, then refuses until the window passes', () => {
    let now = 0;
    const limiter = new RateLimiter(3, 1000, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('k'))).toEqual([true, true, true, false]);
    expect(limiter.blocked('k')).toBe(true);
    now = 1001;
    expect(limiter.take('k')).toBe(true);
  });
});
