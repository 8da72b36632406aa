import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { DpopNonces } from './dpop.ts';
import { AccessTokenVerifier, type IdentityState } from './verifier.ts';

const ISSUER = 'https://mandate.test';
const AUD = 'https://mandate.test/mcp/demo';

/** The per-process cache of verified tokens skips only the signature check: every other check still runs on every call. */
describe('AccessTokenVerifier verified-token cache', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const setup = () => {
    const state = { now: 1_800_000_000_000, keys: new Map<string, KeyObject>([['k1', publicKey]]), revoked: new Set<string>(), identity: 'active' as IdentityState, notBefore: null as number | null, resolves: 0 };
    const verifier = new AccessTokenVerifier({
      issuer: ISSUER,
      keys: { resolve: async (kid) => (state.resolves++, state.keys.get(kid)) },
      revocations: { isRevoked: (jti) => state.revoked.has(jti) },
      identities: { state: async () => ({ status: state.identity, tokensNotBefore: state.notBefore }) },
      humans: { active: async () => true },
      replay: { claim: async () => true },
      nonces: new DpopNonces(new Uint8Array(32).fill(1)),
      requireDpopNonce: false,
      audit: async () => undefined,
      now: () => state.now,
    });
    const token = (seconds = 300, extra: Record<string, unknown> = {}) =>
      new SignJWT({ client_id: 'c1', identity_id: 'agt_1', scope: 'mcp', ...extra })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' })
        .setIssuer(ISSUER)
        .setSubject('agt_1')
        .setAudience(AUD)
        .setJti(`jti-${Math.random()}`)
        .setIssuedAt(state.now / 1000)
        .setExpirationTime(state.now / 1000 + seconds)
        .sign(privateKey);
    const verify = (t: string, audience = AUD) => verifier.verify({ authorization: `Bearer ${t}`, dpop: undefined, method: 'POST', url: AUD }, { audience });
    return { state, token, verify };
  };

  it('a token verified before is accepted again, with claims nobody can change', async () => {
    const { token, verify } = setup();
    const t = await token();
    const first = await verify(t);
    const second = await verify(t);
    expect(second.identityId).toBe('agt_1');
    expect(second.claims).toBe(first.claims);
    expect(Object.isFrozen(second.claims)).toBe(true);
    expect(() => ((second.claims as Record<string, unknown>).sub = 'agt_2')).toThrow();
  });

  it('RFC7519-4.1.4 expiry is checked against the clock of every call, not the first', async () => {
    const { state, token, verify } = setup();
    const t = await token(60);
    await verify(t);
    state.now += 64_000; // within the 5 s leeway
    await verify(t);
    state.now += 2_000;
    await expect(verify(t)).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
  });

  it('revocation, identity status and audience are re-checked on a cached token', async () => {
    const { state, token, verify } = setup();
    const t = await token();
    await verify(t);
    await expect(verify(t, 'https://mandate.test/mcp/other')).rejects.toMatchObject({ code: 'TOKEN_AUDIENCE_MISMATCH' });
    state.identity = 'suspended';
    await expect(verify(t)).rejects.toMatchObject({ code: 'IDENTITY_SUSPENDED' });
    state.identity = 'active';
    const claims = (await verify(t)).claims;
    state.revoked.add(claims.jti as string);
    await expect(verify(t)).rejects.toMatchObject({ code: 'TOKEN_REVOKED' });
  });

  it('a cached token stops verifying when its signing key is no longer accepted', async () => {
    const { state, token, verify } = setup();
    const t = await token();
    await verify(t);
    state.keys.delete('k1');
    await expect(verify(t)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
  });

  it('a token that fails verification is never cached (a forged signature stays forged)', async () => {
    const { token, verify } = setup();
    const t = await token();
    const [h, p, s] = t.split('.');
    const forged = `${h}.${p}.${s!.slice(0, -4)}AAAA`;
    await expect(verify(forged)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await expect(verify(forged)).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    await verify(t);
  });

  it('tokens-not-before: iat_ms decides to the millisecond; a token without it counts from the start of its iat second', async () => {
    const { state, token, verify } = setup();
    const legacy = await token();
    await verify(legacy);
    const before = await token(300, { iat_ms: state.now + 399 });
    const at = await token(300, { iat_ms: state.now + 400 });
    // A suspension 400 ms into the second all three tokens share (`iat` cannot tell them apart).
    state.notBefore = state.now + 400;
    await expect(verify(legacy)).rejects.toMatchObject({ code: 'TOKEN_REVOKED' });
    await expect(verify(before)).rejects.toMatchObject({ code: 'TOKEN_REVOKED' });
    expect((await verify(at)).identityId).toBe('agt_1');
    // The instant is checked whatever the status: it outlives the resume.
    state.identity = 'suspended';
    await expect(verify(at)).rejects.toMatchObject({ code: 'IDENTITY_SUSPENDED' });
    state.identity = 'active';
    await expect(verify(before)).rejects.toMatchObject({ code: 'TOKEN_REVOKED' });
  });
});
