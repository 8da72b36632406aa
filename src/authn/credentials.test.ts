import { randomBytes } from 'node:crypto';
import { generate as totpCode } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestStore } from '../../test/support/backends.ts';
import { AuditLog } from '../audit/index.ts';
import { KeyRing } from '../keys/index.ts';
import type { Store } from '../store/index.ts';
import { CredentialService } from './credentials.ts';

describe.each(BACKENDS)('TOTP enrolment on %s', (backend) => {
  let store: Store;
  let close: () => Promise<void>;
  let credentials: CredentialService;
  const password = 'correct horse battery staple';
  const email = 'totp@example.com';
  /** A code for `secret` one time step ahead (within the ±1 step window), so it differs from a code just used. */
  const nextCode = (secret: string, steps = 1) => totpCode({ secret, epoch: Math.floor(Date.now() / 1000) + 30 * steps });

  beforeAll(async () => {
    const opened = await openTestStore(backend);
    store = opened.store;
    close = opened.close;
    const audit = new AuditLog(store, new KeyRing(store, randomBytes(32)), { checkpointEvery: 1000 });
    await audit.init();
    credentials = new CredentialService(store, audit, { masterKey: randomBytes(32) });
    const now = new Date().toISOString();
    await store.db.insertInto('humans').values({ id: 'hum_totp', email, user_name: email, display_name: 'T', department: null, manager_id: null, status: 'active', external_id: null, attributes: '{}', created_at: now, updated_at: now, deactivated_at: null }).execute();
    await credentials.setPassword('hum_totp', password, 'test');
  });
  afterAll(() => close());

  it('re-enrolment keeps the confirmed second factor until the new secret is confirmed', async () => {
    const first = await credentials.enrollTotp('hum_totp', 'test');
    // Not yet confirmed: sign-in does not ask for it.
    expect(await credentials.verifyLogin(email, password, undefined)).toMatchObject({ ok: true });
    await credentials.confirmTotp('hum_totp', await totpCode({ secret: first.secret }), 'test');
    expect(await credentials.verifyLogin(email, password, undefined)).toMatchObject({ ok: false, failure: 'totp_required' });

    const second = await credentials.enrollTotp('hum_totp', 'admin');
    // The old factor is still required, and only the old secret's codes are accepted.
    expect(await credentials.verifyLogin(email, password, undefined)).toMatchObject({ ok: false, failure: 'totp_required' });
    expect(await credentials.verifyLogin(email, password, await nextCode(second.secret))).toMatchObject({ ok: false, failure: 'totp_invalid' });
    expect(await credentials.verifyLogin(email, password, await nextCode(first.secret))).toMatchObject({ ok: true });
    // A code of the old secret does not confirm the new one.
    await expect(credentials.confirmTotp('hum_totp', await nextCode(first.secret, -1), 'test')).rejects.toMatchObject({ code: 'TOTP_INVALID' });

    await credentials.confirmTotp('hum_totp', await totpCode({ secret: second.secret }), 'test');
    // Now the new secret is the factor; the old one is gone, and the confirming code cannot sign in again.
    expect(await credentials.verifyLogin(email, password, await nextCode(first.secret))).toMatchObject({ ok: false, failure: 'totp_invalid' });
    expect(await credentials.verifyLogin(email, password, await totpCode({ secret: second.secret }))).toMatchObject({ ok: false, failure: 'totp_invalid' });
    expect(await credentials.verifyLogin(email, password, await nextCode(second.secret))).toMatchObject({ ok: true });
  });

  it('a confirmation without a pending enrolment is refused', async () => {
    await expect(credentials.confirmTotp('hum_totp', '123456', 'test')).rejects.toMatchObject({ code: 'TOTP_INVALID' });
  });
});
