import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configFromEnvironment, loadConfig } from '../src/core/config.ts';
import { MandateError, problemDetails } from '../src/core/index.ts';
import { toMandateError } from '../src/server/index.ts';
import { BACKENDS } from './support/backends.ts';
import { runCli } from './support/cli.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * The small findings of the hardening pass (issue finding 7): path parameters that are not ids, problem
 * members overwritten by details, decided approvals, oversized headers, CORS on the token endpoint,
 * and policies applied without validation.
 */

const HOSTILE_PARAMS = ['0', '-1', 'abc', '1.5', '%00', 'x'.repeat(4000), '%2E%2E', '..%2F..', '99999999999999999999', '1e400', '%F0%9F%98%80', ' 1'];

describe.each(BACKENDS)('path parameters (%s)', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend);
  }, 60_000);
  afterAll(() => server?.stop());

  it('POST /api/v1/policies/versions/{0,-1,abc,1.5}/activate is 404 POLICY_VERSION_NOT_FOUND, like GET', async () => {
    for (const version of ['0', '-1', 'abc', '1.5', '1e3', '0x1', '4294967296', '7']) {
      for (const [method, path] of [['POST', `/api/v1/policies/versions/${version}/activate`], ['GET', `/api/v1/policies/versions/${version}`]] as const) {
        const response = await server.api(method, path);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        expect(await response.json()).toMatchObject({ status: 404, code: 'POLICY_VERSION_NOT_FOUND', type: 'https://mandate.dev/problems/policy-version-not-found' });
      }
    }
  });

  it('a ZodError thrown anywhere in a route is a 400 REQUEST_INVALID, never a 500', () => {
    const thrown = (() => {
      try {
        z.coerce.number().int().min(1).parse('abc');
      } catch (error) {
        return error;
      }
    })();
    expect(toMandateError(thrown)).toMatchObject({ code: 'REQUEST_INVALID', status: 400 });
  });

  it('every route in the OpenAPI registry, with hostile path parameters: never a 5xx', async () => {
    const document = (await (await server.api('GET', '/api/v1/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    const templated = Object.entries(document.paths).filter(([path]) => path.includes('{'));
    expect(templated.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const [template, methods] of templated) {
      for (const method of Object.keys(methods)) {
        for (const value of HOSTILE_PARAMS) {
          const path = template.replace(/\{\w+\}/g, value);
          const body = method === 'get' || method === 'delete' ? undefined : {};
          const response = await server.api(method.toUpperCase(), path, body);
          await response.arrayBuffer();
          if (response.status >= 500) failures.push(`${method.toUpperCase()} ${path.slice(0, 120)} → ${response.status}`);
        }
      }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});

describe('problem members', () => {
  let server: TestServer;
  let agentId: string;
  let ownerId: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    ownerId = ((await (await server.api('POST', '/api/v1/humans', { email: 'owner@example.com', displayName: 'Owner' })).json()) as { id: string }).id;
    agentId = ((await (await server.api('POST', '/api/v1/agents', { name: 'bot', ownerId })).json()) as { id: string }).id;
  }, 60_000);
  afterAll(() => server?.stop());

  it('AUTHZEN_PROPERTIES_RESERVED keeps its type URI, names the entity type in entityType, and says "an Agent"', async () => {
    const response = await fetch(`${server.url}/access/v1/evaluation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { type: 'Agent', id: agentId, properties: { status: 'active' } }, action: { name: 'tools/call' }, resource: { type: 'Tool', id: 'srv/echo' } }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'https://mandate.dev/problems/authzen-properties-reserved', status: 400, code: 'AUTHZEN_PROPERTIES_RESERVED', entityType: 'Agent', where: 'subject' });
    expect(body.detail).toContain('for an Agent');
    const tool = await fetch(`${server.url}/access/v1/evaluation`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { type: 'Agent', id: agentId }, action: { name: 'tools/call' }, resource: { type: 'Tool', id: 'srv/echo', properties: { labels: [] } } }),
    });
    expect(await tool.json()).toMatchObject({ type: 'https://mandate.dev/problems/authzen-properties-reserved', entityType: 'Tool', detail: expect.stringContaining('for a Tool') });
  });

  it('an error detail named like a standard member never replaces it', () => {
    const error = new MandateError('CONFLICT', 'conflict', 409, { type: 'Agent', title: 't', status: 'denied', detail: 'd', instance: 'i', code: 'OTHER', extra: 1 });
    expect(problemDetails(error)).toEqual({ type: 'https://mandate.dev/problems/conflict', title: 'CONFLICT', status: 409, detail: 'conflict', code: 'CONFLICT', extra: 1 });
  });

  describe('deciding an approval that is already decided', () => {
    const input = () => ({ agentId, ownerId, userId: null, approver: 'owner', server: 'demo', action: 'tools/call', target: 'demo/delete', arguments: { id: 1 }, argsDigest: 'd', policies: ['policy0'], sessionId: 's', timeoutSeconds: 60 });
    /** A real pending approval (what a gated call creates); resolves with its id and the waiting call. */
    const pending = async () => {
      let created: (id: string) => void = () => undefined;
      const id = new Promise<string>((resolve) => (created = resolve));
      const waiting = server.services.gateway.approvals.request(input(), new AbortController().signal, (approval) => created(approval.id));
      return { id: await id, waiting };
    };

    it('sequentially: 409 APPROVAL_CLOSED with approvalStatus, and "status" stays the HTTP status', async () => {
      for (const [first, second] of [['deny', 'approve'], ['approve', 'approve'], ['deny', 'deny'], ['approve', 'deny']] as const) {
        const { id, waiting } = await pending();
        expect((await server.api('POST', `/api/v1/mcp/approvals/${id}/${first}`, {})).status).toBe(200);
        const again = await server.api('POST', `/api/v1/mcp/approvals/${id}/${second}`, {});
        expect(again.status).toBe(409);
        expect(await again.json()).toMatchObject({ status: 409, code: 'APPROVAL_CLOSED', approvalStatus: first === 'approve' ? 'approved' : 'denied' });
        expect((await waiting).status).toBe(first === 'approve' ? 'approved' : 'denied');
      }
    });

    it('concurrently: exactly one decision wins, every other is 409, and one decision is audited', async () => {
      for (const verdicts of [['approve', 'approve', 'approve', 'approve'], ['approve', 'deny', 'approve', 'deny']]) {
        const { id, waiting } = await pending();
        const answers = await Promise.all(verdicts.map((v) => server.api('POST', `/api/v1/mcp/approvals/${id}/${v}`, { reason: v })));
        expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409]);
        const winner = (await answers.find((a) => a.status === 200)!.json()) as { status: string };
        for (const loser of answers.filter((a) => a.status === 409)) expect(await loser.json()).toMatchObject({ status: 409, code: 'APPROVAL_CLOSED', approvalStatus: winner.status });
        expect((await waiting).status).toBe(winner.status);
        const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; target: string }[] };
        expect(audit.items.filter((e) => e.target === id && /^mcp\.approval\.(approved|denied)$/.test(e.action))).toHaveLength(1);
      }
    });

    it('an expired approval is 409 too', async () => {
      const { id, waiting } = await pending();
      await server.services.store.db.updateTable('mcp_approvals').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', id).execute();
      const late = await server.api('POST', `/api/v1/mcp/approvals/${id}/approve`, {});
      expect(late.status).toBe(409);
      expect(await late.json()).toMatchObject({ status: 409, code: 'APPROVAL_CLOSED', approvalStatus: 'expired' });
      expect((await waiting).status).toBe('expired');
    });
  });
});

describe('requests the HTTP parser refuses', () => {
  let server: TestServer;
  beforeAll(async () => {
    process.env.MANDATE_MTLS_PORT = '0';
    try {
      server = await startTestServer('sqlite', { adminPort: 0 });
    } finally {
      delete process.env.MANDATE_MTLS_PORT;
    }
    await server.services.oauth.mtlsReady;
  }, 60_000);
  afterAll(() => server?.stop());

  /** Writes raw bytes to a listener and collects everything it answers until it closes the connection. */
  const raw = (origin: string, request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const url = new URL(origin);
      const onConnect = () => socket.write(request.replace('HOST', url.host));
      const socket: Socket = url.protocol === 'https:' ? connectTls({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, onConnect) : connectTcp(Number(url.port), url.hostname, onConnect);
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
    });
  const problemOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

  it('headers over 16 KB are 431 HEADERS_TOO_LARGE as problem+json on every listener, and the connection is closed', async () => {
    const listeners = { main: server.url, admin: server.adminUrl, mtls: server.services.oauth.mtlsOrigin!.replace('localhost', '127.0.0.1') };
    expect(new Set(Object.values(listeners)).size).toBe(3);
    for (const [name, origin] of Object.entries(listeners)) {
      const answer = await raw(origin, `GET /healthz HTTP/1.1\r\nHost: HOST\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
      expect(answer, name).toMatch(/^HTTP\/1\.1 431 /);
      expect(answer.toLowerCase()).toContain('content-type: application/problem+json');
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(problemOf(answer)).toMatchObject({ status: 431, code: 'HEADERS_TOO_LARGE', type: 'https://mandate.dev/problems/headers-too-large' });
    }
  });

  it('malformed HTTP is 400 REQUEST_MALFORMED as problem+json, and the connection is closed', async () => {
    for (const request of ['GET /healthz HTTP/1.1\r\nHost: HOST\r\nBad Header\r\n\r\n', 'NOT HTTP AT ALL\r\n\r\n', 'POST /api/v1/humans HTTP/1.1\r\nHost: HOST\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
      const answer = await raw(server.url, request);
      expect(answer, JSON.stringify(request)).toMatch(/^HTTP\/1\.1 400 /);
      expect(problemOf(answer)).toMatchObject({ status: 400, code: 'REQUEST_MALFORMED' });
    }
    // A well-formed request on the same listener is still answered.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe('CORS on the authorization server', () => {
  const allowed = 'https://app.example.com';
  let plain: TestServer;
  let configured: TestServer;
  beforeAll(async () => {
    [plain, configured] = await Promise.all([startTestServer('sqlite'), startTestServer('sqlite', { corsOrigins: [allowed] })]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([plain?.stop(), configured?.stop()]);
  });

  const preflight = (server: TestServer, path: string, origin: string) =>
    fetch(`${server.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, dpop' } });
  const corsHeaders = (response: Response) => [...response.headers.keys()].filter((h) => h.startsWith('access-control-'));

  it('by default no origin is echoed: not in a preflight of /oauth/token, not on a token response, not on discovery', async () => {
    for (const origin of ['https://evil.example', allowed, 'null']) {
      for (const path of ['/oauth/token', '/oauth/me', '/oauth/register', '/oauth/par', '/.well-known/openid-configuration']) {
        const response = await preflight(plain, path, origin);
        expect(corsHeaders(response), `${path} ${origin}`).toEqual([]);
      }
      const token = await fetch(`${plain.url}/oauth/token`, { method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=nobody' });
      await token.arrayBuffer();
      expect(corsHeaders(token)).toEqual([]);
      const discovery = await fetch(`${plain.url}/.well-known/openid-configuration`, { headers: { origin } });
      expect(discovery.status).toBe(200);
      expect(corsHeaders(discovery)).toEqual([]);
    }
  });

  it('MANDATE_CORS_ORIGINS allows exactly the configured origins', async () => {
    const ok = await preflight(configured, '/oauth/token', allowed);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(ok.headers.get('vary')).toMatch(/origin/i);
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'http://app.example.com', 'null']) {
      expect(corsHeaders(await preflight(configured, '/oauth/token', origin)), origin).toEqual([]);
    }
    const discovery = await fetch(`${configured.url}/.well-known/openid-configuration`, { headers: { origin: allowed } });
    expect(discovery.headers.get('access-control-allow-origin')).toBe(allowed);
  });

  it('MANDATE_CORS_ORIGINS is a comma-separated list of exact origins; a wildcard or a URL with a path is refused', () => {
    const base = { mode: 'dev' as const, dataDir: mkdtempSync(join(tmpdir(), 'mandate-cors-')) };
    expect(loadConfig(base, configFromEnvironment({ MANDATE_CORS_ORIGINS: 'https://a.example, https://b.example:8443' })).corsOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(loadConfig(base).corsOrigins).toEqual([]);
    for (const bad of ['*', 'https://a.example/', 'https://a.example/app', 'a.example', 'null']) {
      expect(() => loadConfig(base, configFromEnvironment({ MANDATE_CORS_ORIGINS: bad })), bad).toThrow(/corsOrigins/);
    }
  });
});

describe('applying a policy that does not validate against Mandate\'s schema', () => {
  let server: TestServer;
  const VALID = 'permit (principal is Agent, action == Action::"tools/call", resource) when { principal.status == "active" };';
  const TYPOS = {
    Agnet: 'permit (principal is Agnet, action == Action::"tools/call", resource);',
    'tools/cal': 'permit (principal is Agent, action == Action::"tools/cal", resource);',
    stauts: 'permit (principal is Agent, action == Action::"tools/call", resource)\nwhen { principal.stauts == "active" };',
  };
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    expect((await server.api('PUT', '/api/v1/policies', { cedar: VALID })).status).toBe(200);
  }, 60_000);
  afterAll(() => server?.stop());

  const active = async () => (await (await server.api('GET', '/api/v1/policies')).json()) as { version: number; cedar: string };
  const lastApply = async () => {
    const audit = (await (await server.api('GET', '/api/v1/audit?limit=1000')).json()) as { items: { action: string; details: Record<string, unknown> }[] };
    return audit.items.filter((e) => e.action === 'policy.apply').at(-1)!;
  };

  it('PUT /api/v1/policies refuses each typo with 400 POLICY_INVALID and its errors; the active version stays', async () => {
    expect((await lastApply()).details.forced).toBeUndefined();
    for (const [typo, cedar] of Object.entries(TYPOS)) {
      const before = await active();
      const response = await server.api('PUT', '/api/v1/policies', { cedar });
      expect(response.status, typo).toBe(400);
      const body = (await response.json()) as { code: string; status: number; errors: { message: string; line: number; column: number; severity: string }[] };
      expect(body).toMatchObject({ code: 'POLICY_INVALID', status: 400 });
      expect(body.errors.length).toBeGreaterThan(0);
      expect(body.errors[0]).toMatchObject({ severity: 'error', line: expect.any(Number), column: expect.any(Number) });
      expect(body.errors.map((e) => e.message).join('\n')).toContain(typo);
      expect(await active()).toEqual(before);
    }
  });

  it('force: true applies it, and the audit event says it was forced', async () => {
    for (const cedar of Object.values(TYPOS)) {
      const response = await server.api('PUT', '/api/v1/policies', { cedar, force: true });
      expect(response.status).toBe(200);
      const version = ((await response.json()) as { version: number }).version;
      expect(await active()).toMatchObject({ version, cedar });
      expect((await lastApply()).details).toMatchObject({ version, forced: true, validationErrors: expect.any(Number) });
    }
  });

  it('mandate policy apply exits non-zero, prints the errors and changes nothing; --force applies it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-policy-'));
    const target = ['--url', server.adminUrl, '--token', server.adminToken];
    for (const [typo, cedar] of Object.entries(TYPOS)) {
      const file = join(dir, `${typo.replace('/', '-')}.cedar`);
      writeFileSync(file, cedar);
      const before = await active();
      const refused = await runCli(server, ['policy', 'apply', '--file', file, ...target]);
      expect(refused.status, `${typo}: ${refused.stdout}${refused.stderr}`).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`${file.replaceAll('.', '\\.')}:\\d+:\\d+: error: policy0: .*${typo}`));
      expect(refused.stderr).toContain('POLICY_INVALID');
      expect(await active()).toEqual(before);
      const forced = await runCli(server, ['policy', 'apply', '--file', file, '--force', '--json', ...target]);
      expect(forced.status, forced.stderr).toBe(0);
      expect(await active()).toMatchObject({ version: before.version + 1, cedar });
      expect((await lastApply()).details).toMatchObject({ forced: true });
    }
    const valid = join(dir, 'valid.cedar');
    writeFileSync(valid, VALID);
    expect((await runCli(server, ['policy', 'apply', '--file', valid, ...target])).status).toBe(0);
    expect((await lastApply()).details.forced).toBeUndefined();
  }, 180_000);

  it('the shipped gateway templates validate', async () => {
    const templates = (await (await server.api('GET', '/api/v1/mcp/policy-templates')).json()) as { items: { id: string; cedar: string }[] };
    for (const template of templates.items) {
      const response = await server.api('POST', '/api/v1/policies/validate', { cedar: template.cedar });
      expect(await response.json(), template.id).toMatchObject({ valid: true });
    }
  });
});
