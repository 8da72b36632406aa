import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/index.ts';
import { IdentityService } from '../identity/index.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { createAdapterFactory } from './adapter.ts';
import { DelegationService } from './delegations.ts';
import { ReplayCache, RevocationList, StatusCache } from './state.ts';

describe.each(BACKENDS)('OAuth state in the store (%s)', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  let audit: AuditLog;
  let identity: IdentityService;

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    audit = new AuditLog(store, new KeyRing(store, new Uint8Array(32).fill(7)), { checkpointEvery: 1000 });
    await audit.init();
    identity = new IdentityService(store, audit, { inactivityDays: 90 });
  });
  afterAll(async () => {
    await audit.flush();
    await close();
  });

  it('RFC9449-11.1 the replay cache admits a key once, even under concurrent claims', async () => {
    const replay = new ReplayCache(store);
    const expires = new Date(Date.now() + 60_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => replay.claim('dpop:k:jti-1', expires)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await replay.claim('dpop:k:jti-2', expires)).toBe(true);
    // An expired entry may be reused.
    await replay.claim('dpop:k:old', new Date(Date.now() - 1000));
    expect(await replay.claim('dpop:k:old', expires)).toBe(true);
  });

  it('oidc-provider ReplayDetection through the adapter is atomic (first find claims)', async () => {
    const Adapter = createAdapterFactory(store);
    const replay = Adapter('ReplayDetection') as { find(id: string): Promise<unknown> };
    expect(await replay.find('assertion-1')).toBeUndefined();
    expect(await replay.find('assertion-1')).toEqual({ jti: 'assertion-1' });
  });

  it('adapter stores, finds, consumes and revokes by grant id', async () => {
    const Adapter = createAdapterFactory(store);
    const codes = Adapter('AuthorizationCode') as { upsert(id: string, p: object, ttl: number): Promise<void>; find(id: string): Promise<Record<string, unknown> | undefined>; consume(id: string): Promise<void>; revokeByGrantId(g: string): Promise<void>; findByUid(u: string): Promise<unknown> };
    await codes.upsert('code-1', { grantId: 'g1', uid: 'u1', accountId: 'hum_x' }, 60);
    await codes.upsert('code-1', { grantId: 'g1', uid: 'u1', accountId: 'hum_y' }, 60);
    expect((await codes.find('code-1'))?.accountId).toBe('hum_y');
    expect(await codes.findByUid('u1')).toBeDefined();
    await codes.consume('code-1');
    expect((await codes.find('code-1'))?.consumed).toBeTypeOf('number');
    await codes.revokeByGrantId('g1');
    expect(await codes.find('code-1')).toBeUndefined();
    await codes.upsert('code-2', { grantId: 'g2' }, 1);
    await store.db.updateTable('oauth_payloads').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', 'code-2').execute();
    expect(await codes.find('code-2')).toBeUndefined();
  });

  it('a revocation reaches the in-memory list through the change event, and survives a reload', async () => {
    const list = new RevocationList(store);
    await list.load();
    const off = list.subscribe();
    await store.transaction(async (tx) => list.revokeIn(tx, { jti: 'jti-revoked', clientId: 'cli_x', reason: 'test', expiresAt: new Date(Date.now() + 60_000) }));
    expect(list.isRevoked('jti-revoked')).toBe(true);
    const fresh = new RevocationList(store);
    await fresh.load();
    expect(fresh.isRevoked('jti-revoked')).toBe(true);
    off();
  });

  it('identity status is cached and dropped on identity.changed (suspension effective at once)', async () => {
    const owner = await identity.createHuman({ email: `state-${backend}@example.com`, displayName: 'Owner' }, 'test');
    const agent = await identity.createIdentity('agent', { name: 'cached', ownerId: owner.id }, 'test');
    const cache = new StatusCache(store, identity);
    const off = cache.subscribe();
    expect(await cache.state(agent.id)).toBe('active');
    await identity.setStatus(agent.id, 'suspended', 'test', 'test');
    expect(await cache.state(agent.id)).toBe('suspended');
    expect(await cache.state('agt_missing')).toBe('missing');
    expect(await cache.active(owner.id)).toBe(true);
    off();
  });

  it('suspension sets tokens-not-before in its transaction, resume keeps it; a read that raced the suspension is not cached', async () => {
    const owner = await identity.createHuman({ email: `tnb-${backend}@example.com`, displayName: 'Owner' }, 'test');
    const agent = await identity.createIdentity('agent', { name: 'raced', ownerId: owner.id }, 'test');
    expect(await identity.tokenState(agent.id)).toEqual({ status: 'active', tokensNotBefore: null });
    let reads = 0;
    let readDone = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cache = new StatusCache(store, {
      tokenState: async (id) => {
        const state = await identity.tokenState(id);
        if (++reads === 1) {
          readDone = true;
          await gate;
        }
        return state;
      },
    });
    const off = cache.subscribe();
    const first = cache.record(agent.id);
    while (!readDone) await new Promise((resolve) => setImmediate(resolve));
    // The suspension commits (and its event arrives) after the first read, before it is answered.
    const started = Date.now();
    await identity.setStatus(agent.id, 'suspended', 'test', 'test');
    release();
    expect(await first).toEqual({ status: 'active', tokensNotBefore: null });
    const suspended = await cache.record(agent.id);
    expect(suspended.status).toBe('suspended');
    expect(suspended.tokensNotBefore).toBeGreaterThanOrEqual(started);
    await identity.setStatus(agent.id, 'active', null, 'test');
    expect(await cache.record(agent.id)).toEqual({ status: 'active', tokensNotBefore: suspended.tokensNotBefore });
    // A second suspension moves the instant forward, never back.
    await identity.setStatus(agent.id, 'suspended', null, 'test');
    expect((await cache.record(agent.id)).tokensNotBefore).toBeGreaterThan(suspended.tokensNotBefore!);
    off();
  });

  it('RFC8693 delegations: recorded, listed, expiring, revocable, and only for active parties', async () => {
    const delegations = new DelegationService(store, audit, { defaultDays: 30 });
    const user = await identity.createHuman({ email: `deleg-${backend}@example.com`, displayName: 'User' }, 'test');
    const owner = await identity.createHuman({ email: `deleg-owner-${backend}@example.com`, displayName: 'Owner' }, 'test');
    const agent = await identity.createIdentity('agent', { name: 'helper', ownerId: owner.id }, 'test');
    const grant = await delegations.grant({ humanId: user.id, identityId: agent.id, scopes: ['a', 'b', 'a'] }, 'test');
    expect(grant.scopes).toEqual(['a', 'b']);
    expect(await delegations.delegatedScopes(user.id, agent.id)).toEqual(['a', 'b']);
    await expect(delegations.revoke(grant.id, 'test', 'hum_someone_else')).rejects.toMatchObject({ code: 'DELEGATION_NOT_FOUND' });
    await delegations.revoke(grant.id, 'test', user.id);
    expect(await delegations.delegatedScopes(user.id, agent.id)).toEqual([]);
    const expired = await delegations.grant({ humanId: user.id, identityId: agent.id, scopes: ['c'] }, 'test');
    await store.db.updateTable('oauth_delegations').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', expired.id).execute();
    expect(await delegations.delegatedScopes(user.id, agent.id)).toEqual([]);
    await identity.setStatus(agent.id, 'suspended', null, 'test');
    await expect(delegations.grant({ humanId: user.id, identityId: agent.id, scopes: ['a'] }, 'test')).rejects.toMatchObject({ code: 'IDENTITY_NOT_ACTIVE' });
  });
});
