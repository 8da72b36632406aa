import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { AuditLog, verifyStoredChain } from '../audit/index.ts';
import { fixedClock } from '../core/clock.ts';
import { KeyRing } from '../keys/index.ts';
import type { ChangeEvent, Store } from '../store/index.ts';
import { IDENTITY_CHANGED, IdentityService } from './service.ts';

describe.each(BACKENDS)('identity lifecycle on %s', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  let identity: IdentityService;
  const clock = fixedClock(new Date('2026-01-01T00:00:00Z'));

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    const audit = new AuditLog(store, new KeyRing(store, randomBytes(32)), { checkpointEvery: 5 });
    await audit.init();
    identity = new IdentityService(store, audit, { clock, inactivityDays: 30 });
  });
  afterAll(() => close());

  it('a mover (department change) flags the owner’s agents for review, once', async () => {
    const owner = await identity.createHuman({ email: 'mover@example.com', displayName: 'Mover', department: 'sales' }, 'test');
    const agent = await identity.createIdentity('agent', { name: 'quota-bot', ownerId: owner.id }, 'test');
    await identity.updateHuman(owner.id, { department: 'finance' }, 'test');
    await identity.updateHuman(owner.id, { department: 'legal' }, 'test');
    expect((await identity.getIdentity(agent.id)).reviewReason).toContain('department');
    const reviews = await identity.listFindings({ kind: 'review', subjectId: agent.id, status: 'open', limit: 10 });
    expect(reviews.items).toHaveLength(1);
    // A change that is not a move (display name) flags nothing new.
    await identity.updateHuman(owner.id, { displayName: 'Renamed' }, 'test');
    expect((await identity.listFindings({ kind: 'review', subjectId: agent.id, limit: 10 })).items).toHaveLength(1);
  });

  it('group membership changes are mover events for the members', async () => {
    const member = await identity.createHuman({ email: 'member@example.com', displayName: 'Member' }, 'test');
    const agent = await identity.createIdentity('workload', { name: 'etl', ownerId: member.id }, 'test');
    const group = await identity.createGroup({ displayName: 'admins' }, 'test');
    await identity.updateGroup(group.id, { members: [member.id] }, 'test');
    expect((await identity.getHuman(member.id)).groups).toEqual([group.id]);
    expect((await identity.listFindings({ kind: 'review', subjectId: agent.id, limit: 10 })).items).toHaveLength(1);
  });

  it('detects orphaned and inactive identities idempotently, and resolves them when the condition clears', async () => {
    const owner = await identity.createHuman({ email: 'idle@example.com', displayName: 'Idle' }, 'test');
    const idle = await identity.createIdentity('agent', { name: 'idle-bot', ownerId: owner.id }, 'test');
    clock.advance(31 * 86_400_000);
    const first = await identity.detect('system:test');
    expect(first.opened.filter((f) => f.subjectId === idle.id).map((f) => f.kind)).toEqual(['inactive']);
    expect((await identity.detect('system:test')).opened.filter((f) => f.subjectId === idle.id)).toEqual([]);
    await identity.touch(idle.id);
    await identity.detect('system:test');
    expect((await identity.listFindings({ kind: 'inactive', subjectId: idle.id, status: 'open', limit: 10 })).items).toEqual([]);

    // An owner deactivated outside the leaver flow (e.g. directly by SCIM before it handed over) leaves an orphan.
    await store.db.updateTable('humans').set({ status: 'inactive' }).where('id', '=', owner.id).execute();
    const orphan = await identity.detect('system:test');
    expect(orphan.opened.filter((f) => f.subjectId === idle.id).map((f) => f.kind)).toEqual(['orphaned']);
  });

  it('decommissioning is final and announced to every subscriber', async () => {
    const owner = await identity.createHuman({ email: 'final@example.com', displayName: 'Final' }, 'test');
    const agent = await identity.createIdentity('agent', { name: 'temp', ownerId: owner.id }, 'test');
    const seen: ChangeEvent[] = [];
    const off = store.events.on(IDENTITY_CHANGED, (event) => {
      seen.push(event);
    });
    await identity.setStatus(agent.id, 'decommissioned', 'done', 'test');
    off();
    expect(seen).toContainEqual({ topic: IDENTITY_CHANGED, data: { id: agent.id, status: 'decommissioned' } });
    await expect(identity.setStatus(agent.id, 'active', null, 'test')).rejects.toMatchObject({ code: 'IDENTITY_DECOMMISSIONED' });
  });

  it('a failed change writes neither the change nor its audit record', async () => {
    const before = (await store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n;
    await expect(identity.createHuman({ email: 'x@example.com', displayName: 'X', groups: ['grp_missing'] }, 'test')).rejects.toMatchObject({ code: 'GROUP_NOT_FOUND' });
    expect((await identity.listHumans({ email: 'x@example.com', limit: 5 })).items).toEqual([]);
    const after = (await store.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n;
    expect(Number(after)).toBe(Number(before));
    expect((await verifyStoredChain(store)).ok).toBe(true);
  });
});

describe('change events across replicas (PostgreSQL LISTEN/NOTIFY)', () => {
  it('a change committed through one store reaches another store on the same database, and a rolled-back one does not', async () => {
    const first = await openTestStore('postgres', true);
    const { Store: StoreClass } = await import('../store/index.ts');
    const second = await StoreClass.open({ ...first.db.options, listen: true });
    try {
      const received: ChangeEvent[] = [];
      const arrived = new Promise<void>((resolve) => {
        second.events.on('test.topic', (event) => {
          received.push(event);
          resolve();
        });
      });
      await expect(
        first.store.transaction(async (tx) => {
          tx.publish('test.topic', { n: 1 });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await first.store.transaction(async (tx) => tx.publish('test.topic', { n: 2 }));
      await arrived;
      expect(received).toEqual([{ topic: 'test.topic', data: { n: 2 } }]);
    } finally {
      await second.close();
      await first.close();
    }
  });
});
