import { MandateError } from '../core/errors.ts';
import { VAULT_CHANGED, type Vault } from '../vault/index.ts';
import type { Store } from '../store/index.ts';
import type { UpstreamCredential } from './types.ts';

export const credentialSecretName = (server: string): string => `mcp/${server}/credential`;
export const envSecretName = (server: string): string => `mcp/${server}/env`;

/**
 * Turns the vault's upstream credentials into request headers. The agent's own token never goes
 * upstream (MCP authorization, "token passthrough" is forbidden): only what this broker returns does.
 * Plaintext is cached in memory for the hot path and dropped whenever the vault changes on any replica.
 */
export class CredentialBroker {
  readonly #vault: Vault;
  readonly #headers = new Map<string, { headers: Record<string, string>; until: number }>();
  readonly #fetch: typeof fetch;

  constructor(store: Store, vault: Vault, options: { fetch?: typeof fetch } = {}) {
    this.#vault = vault;
    this.#fetch = options.fetch ?? fetch;
    store.events.on(VAULT_CHANGED, () => this.#headers.clear());
    store.events.on('resync', () => this.#headers.clear());
  }

  /** Headers to add to every upstream request for `server` (empty when it has no credential). */
  async headersFor(server: string, hasCredential: boolean): Promise<Record<string, string>> {
    if (!hasCredential) return {};
    const cached = this.#headers.get(server);
    if (cached && cached.until > Date.now()) return cached.headers;
    const text = await this.#vault.reveal(credentialSecretName(server));
    if (text === undefined) throw new MandateError('GATEWAY_CREDENTIAL_MISSING', `the credential of ${server} is missing from the vault`, 502);
    const credential = JSON.parse(text) as UpstreamCredential;
    let entry: { headers: Record<string, string>; until: number };
    switch (credential.kind) {
      case 'bearer':
        entry = { headers: { authorization: `Bearer ${credential.token}` }, until: Number.POSITIVE_INFINITY };
        break;
      case 'header':
        entry = { headers: { [credential.name.toLowerCase()]: credential.value }, until: Number.POSITIVE_INFINITY };
        break;
      case 'oauth_client_credentials':
        entry = await this.#clientCredentials(credential);
        break;
    }
    this.#headers.set(server, entry);
    return entry.headers;
  }

  /** RFC 6749 §4.4: the gateway is the OAuth client of the upstream; the token is cached until shortly before it expires. */
  async #clientCredentials(c: Extract<UpstreamCredential, { kind: 'oauth_client_credentials' }>): Promise<{ headers: Record<string, string>; until: number }> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (c.scope) form.set('scope', c.scope);
    if (c.resource) form.set('resource', c.resource);
    let response: Response;
    try {
      response = await this.#fetch(c.tokenUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          // RFC 6749 §2.3.1: client_secret_basic, form-urlencoded before base64.
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64')}`,
        },
        body: form.toString(),
        signal: AbortSignal.timeout(10_000),
      });
    } catch {
      throw new MandateError('GATEWAY_UPSTREAM_TOKEN_FAILED', 'the upstream token endpoint is unreachable', 502);
    }
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; token_type?: unknown };
    if (!response.ok || typeof body.access_token !== 'string') {
      throw new MandateError('GATEWAY_UPSTREAM_TOKEN_FAILED', `the upstream token endpoint answered ${response.status}`, 502);
    }
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
    return { headers: { authorization: `Bearer ${body.access_token}` }, until: Date.now() + Math.max(0, seconds - 30) * 1000 };
  }
}
