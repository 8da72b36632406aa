import type { webcrypto } from 'node:crypto';
import * as client from 'openid-client';
import type { TestServer } from './support/server.ts';

/** JSON helper for the admin API: fails loudly on an unexpected status. */
export async function adminJson<T = Record<string, unknown>>(server: TestServer, method: string, path: string, body?: unknown, expected = [200, 201]): Promise<T> {
  const response = await server.api(method, path, body);
  const text = await response.text();
  if (!expected.includes(response.status)) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

export async function createAgent(server: TestServer, ownerId: string, name: string, kind: 'agent' | 'workload' = 'agent'): Promise<{ id: string }> {
  return adminJson(server, 'POST', `/api/v1/${kind}s`, { name, ownerId });
}

export async function createClient(server: TestServer, identityId: string, body: Record<string, unknown>, kind: 'agent' | 'workload' = 'agent'): Promise<{ client_id: string; client_secret?: string; tls_client_auth_san_uri?: string }> {
  return adminJson(server, 'POST', `/api/v1/${kind}s/${identityId}/clients`, body);
}

export function discover(issuer: string, clientId: string, auth: client.ClientAuth, metadata: Partial<client.ClientMetadata> = {}): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), clientId, metadata, auth, { execute: [client.allowInsecureRequests] });
}

/** Audit rows matching `action` (and optionally a predicate), polled with a bounded loop (appends may be group-committed). */
export async function auditRows(server: TestServer, action: string, match: (row: { outcome: string; details: Record<string, unknown>; target: string | null; actor: string }) => boolean = () => true): Promise<{ outcome: string; details: Record<string, unknown>; target: string | null; actor: string }[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await server.services.audit.flush();
    const rows: { action: string; outcome: string; details: Record<string, unknown>; target: string | null; actor: string }[] = [];
    let after = 0;
    for (;;) {
      const page = await server.services.audit.list(after, 1000);
      rows.push(...(page.items as typeof rows));
      if (page.next === null) break;
      after = page.next;
    }
    const found = rows.filter((r) => r.action === action && match(r));
    if (found.length > 0) return found;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return [];
}

/** A tiny cookie jar for driving the login pages with fetch. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();
  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(header) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export function csrfOf(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no csrf token in page: ${html.slice(0, 500)}`);
  return match[1]!;
}

/**
 * Walks the authorization code flow as a browser would: authorize → login (password + TOTP) → consent →
 * back to the client with a code. Returns the callback URL.
 */
export async function browserLogin(authorizationUrl: URL, login: { email: string; password: string; totp?: () => Promise<string> }, consent: 'allow' | 'deny' = 'allow'): Promise<URL> {
  const jar = new CookieJar();
  const origin = authorizationUrl.origin;
  let url = authorizationUrl.href;
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(response);
    if (response.status === 303 || response.status === 302) {
      const location = new URL(response.headers.get('location')!, url);
      if (location.origin !== origin) return location;
      url = location.href;
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`unexpected ${response.status} at ${url}: ${html.slice(0, 300)}`);
    const csrf = csrfOf(html);
    const form = new URLSearchParams({ csrf });
    let action: string;
    if (html.includes('name="password"')) {
      action = /action="([^"]+login)"/.exec(html)![1]!;
      form.set('email', login.email);
      form.set('password', login.password);
      if (login.totp) form.set('totp', await login.totp());
    } else {
      action = /action="([^"]+consent)"/.exec(html)![1]!;
      form.set('decision', consent);
    }
    const posted = await fetch(new URL(action, origin), { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin }, body: form });
    jar.store(posted);
    if (posted.status !== 303) throw new Error(`form post ${action} → ${posted.status}: ${(await posted.text()).slice(0, 300)}`);
    const next = new URL(posted.headers.get('location')!, origin);
    if (next.origin !== origin) return next;
    url = next.href;
  }
  throw new Error('too many redirects');
}

/** The OAuth error code of an openid-client failure (token endpoint body or WWW-Authenticate challenge). */
export function oauthErrorOf(error: unknown): string | undefined {
  const e = error as { error?: string; cause?: unknown };
  if (typeof e.error === 'string') return e.error;
  const challenges = e.cause as { parameters?: { error?: string } }[] | undefined;
  return Array.isArray(challenges) ? challenges[0]?.parameters?.error : undefined;
}

export async function expectOAuthError(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (oauthErrorOf(error) === code) return;
    throw new Error(`expected OAuth error ${code}, got ${oauthErrorOf(error) ?? String(error)}`, { cause: error });
  }
  throw new Error(`expected OAuth error ${code}, but the request succeeded`);
}

/** A DPoP proof (RFC 9449 §4.2) made by hand, e.g. with a thief's key. */
export async function dpopProof(keys: { publicKey: webcrypto.CryptoKey; privateKey: webcrypto.CryptoKey }, method: string, url: string, accessToken?: string): Promise<string> {
  const { SignJWT, exportJWK } = await import('jose');
  const { createHash, randomUUID } = await import('node:crypto');
  const jwk = await exportJWK(keys.publicKey);
  return new SignJWT({ htm: method, htu: url, jti: randomUUID(), ...(accessToken && { ath: createHash('sha256').update(accessToken).digest('base64url') }) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .setIssuedAt()
    .sign(keys.privateKey);
}
