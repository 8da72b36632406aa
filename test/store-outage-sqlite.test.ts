import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { serverForFile } from './support/server.ts';

/**
 * The embedded store's counterpart of store-outage.test.ts: the database locked by another process for
 * longer than the busy timeout (5 s). The write is refused as a 503 the client may retry, not a 500,
 * and the next one after the lock goes works.
 */
const server = serverForFile('sqlite');
let other: DatabaseSync | undefined;
afterAll(() => other?.close());

describe('an embedded store locked by someone else', () => {
  it('answers 503 STORE_UNAVAILABLE with Retry-After, then serves again', async () => {
    const create = (email: string) => server().api('POST', '/api/v1/humans', { email, displayName: 'Locked Out' });
    other = new DatabaseSync(join(server().services.config.dataDir, 'mandate.db'));
    other.exec('BEGIN IMMEDIATE');
    const refused = await create('locked@example.com');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(await refused.json()).toMatchObject({ code: 'STORE_UNAVAILABLE', status: 503 });
    // SCIM answers in its own error format (RFC 7644 §3.12), with the same status and Retry-After.
    const scim = await fetch(`${server().url}/scim/v2/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server().services.config.scimToken!}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'scim-locked@example.com', emails: [{ value: 'scim-locked@example.com', primary: true }] }),
    });
    expect(scim.status).toBe(503);
    expect(scim.headers.get('retry-after')).toBe('5');
    expect(await scim.json()).toMatchObject({ status: '503', code: 'STORE_UNAVAILABLE' });
    other.exec('ROLLBACK');
    expect((await create('unlocked@example.com')).status).toBe(201);
  }, 20_000);
});
