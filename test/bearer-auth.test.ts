import { describe, expect, it } from 'vitest';
import { serverForFile } from './support/server.ts';

/**
 * One bearerAuth middleware serves the admin API, AuthZEN and SCIM; each keeps the scheme rule it always
 * had. RFC 6750 §2.1 makes the scheme case-insensitive; the admin API and AuthZEN require `Bearer` exactly
 * (unchanged, noted for a later decision), SCIM accepts any case (identity providers differ).
 */
describe('bearer authentication on each surface', () => {
  const server = serverForFile('sqlite');
  const get = (path: string, authorization: string) => fetch(`${server().url}${path}`, { headers: { authorization } });
  const evaluate = (authorization: string) =>
    fetch(`${server().url}/access/v1/evaluation`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { type: 'Agent', id: 'a' }, action: { name: 'read' }, resource: { type: 'Thing', id: 't' } }),
    });

  it('admin API: `Bearer` exactly, printable token up to 4096 characters; otherwise 401 AUTH_REQUIRED with its realm', async () => {
    const token = server().adminToken;
    expect((await get('/api/v1/humans', `Bearer ${token}`)).status).toBe(200);
    for (const header of [`bearer ${token}`, `BEARER ${token}`, `Bearer  ${token}`, `Basic ${token}`, 'Bearer ', `Bearer ${'a'.repeat(4097)}`]) {
      const response = await get('/api/v1/humans', header);
      expect(response.status, header.slice(0, 20)).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="mandate"');
      expect(((await response.json()) as { code: string }).code).toBe('AUTH_REQUIRED');
    }
  });

  it('AuthZEN: the same rule, its own realm', async () => {
    const token = server().adminToken;
    expect((await evaluate(`Bearer ${token}`)).status).toBe(200);
    const refused = await evaluate(`bearer ${token}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="mandate-pdp"');
  });

  it('SCIM: any case of the scheme, its own token and realm', async () => {
    const token = server().services.config.scimToken!;
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) expect((await get('/scim/v2/Users', `${scheme} ${token}`)).status).toBe(200);
    const refused = await get('/scim/v2/Users', `Bearer ${server().adminToken}`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="mandate-scim"');
  });
});
