/**
 * Whatever strings an event carries — lone surrogates, NUL, any UTF-16 code unit — the chain that the
 * store keeps verifies (hardening issue, finding 1). Both group-committed and in-transaction appends,
 * on both stores, since each store mangles such text its own way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { AuditLog } from './audit-log.ts';
import { verifyStoredChain } from './store-source.ts';

/** Any sequence of UTF-16 code units, lone surrogates and U+0000 included, often enough to matter. */
const anyUnits = fc.oneof(
  fc.string(),
  fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.constant(0)), { maxLength: 12 }).map((units) => String.fromCharCode(...units)),
);

describe.each(BACKENDS)('audit text on %s', (backend) => {
  let store: Store;
  let audit: AuditLog;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    audit = new AuditLog(store, new KeyRing(store, randomBytes(32)), { checkpointEvery: 7 });
    await audit.init();
  });
  afterAll(() => close());

  it('stores exactly what it hashed, for any strings in any field', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ actor: anyUnits, action: anyUnits, target: fc.option(anyUnits), outcome: anyUnits, key: anyUnits, value: anyUnits, inTx: fc.boolean() }), { minLength: 1, maxLength: 5 }), async (events) => {
        await Promise.all(
          events.map((e) => {
            const input = { actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, details: { [e.key]: e.value, list: [e.value, { [e.value]: e.key }] } };
            return e.inTx ? store.transaction((tx) => audit.appendIn(tx, input)) : audit.append(input);
          }),
        );
        expect(await verifyStoredChain(store)).toMatchObject({ ok: true });
      }),
      { numRuns: 40 },
    );
  });
});
