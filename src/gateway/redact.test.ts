import { describe, expect, it } from 'vitest';
import { REDACTED, redact } from './redact.ts';
import { gatewaySettingsSchema } from './settings.ts';

// Security review 2026-11-23: audit records are a hash chain and cannot be scrubbed afterwards, so a
// secret that slips past redaction is there for good.
describe('redaction of tool arguments', () => {
  const defaults = gatewaySettingsSchema.parse({}).redactPaths;

  it('the default paths catch secrets whatever the key\'s case or separator', () => {
    const args = { Authorization: 'Bearer abc', PASSWORD: 'p', apikey: 'k', 'API-KEY': 'k2', Token: 't', nested: { Secret: 's', clientSecret: 'c', client_secret: 'c2', access_token: 'a', accessToken: 'a2', refresh_token: 'r', private_key: 'pk', Cookie: 'sid=1' }, query: 'keep me' };
    const out = redact(args, defaults) as Record<string, unknown>;
    expect(out).toEqual({
      Authorization: REDACTED, PASSWORD: REDACTED, apikey: REDACTED, 'API-KEY': REDACTED, Token: REDACTED,
      nested: { Secret: REDACTED, clientSecret: REDACTED, client_secret: REDACTED, access_token: REDACTED, accessToken: REDACTED, refresh_token: REDACTED, private_key: REDACTED, Cookie: REDACTED },
      query: 'keep me',
    });
  });

  it('configured paths still match exactly by structure (`*` one level, `**` any depth)', () => {
    expect(redact({ a: { b: 1, c: 2 }, b: 3 }, ['a.b'])).toEqual({ a: { b: REDACTED, c: 2 }, b: 3 });
    expect(redact({ list: [{ SSN: '1' }, { ssn: '2' }] }, ['list.*.ssn'])).toEqual({ list: [{ SSN: REDACTED }, { ssn: REDACTED }] });
  });

  it('keeps a `__proto__` member (from JSON) as a member, redacted inside like any other', () => {
    const args = JSON.parse('{"__proto__": {"password": "p", "q": 1}}') as unknown;
    expect(JSON.stringify(redact(args, defaults))).toBe('{"__proto__":{"password":"[redacted]","q":1}}');
  });

  it('returns the arguments untouched when no path is configured', () => {
    const args = { password: 'p' };
    expect(redact(args, [])).toBe(args);
  });
});
