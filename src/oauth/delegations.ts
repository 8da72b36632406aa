import type { AuditLog } from '../audit/index.ts';
import { MandateError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../store/index.ts';

export const DELEGATION_CHANGED = 'oauth.delegation.changed';

export interface Delegation {
  id: string;
  humanId: string;
  identityId: string;
  clientId: string | null;
  scopes: string[];
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

function toDelegation(row: { id: string; human_id: string; identity_id: string; client_id: string | null; scopes: string; created_at: string; expires_at: string; revoked_at: string | null }): Delegation {
  return { id: row.id, humanId: row.human_id, identityId: row.identity_id, clientId: row.client_id, scopes: row.scopes.split(' ').filter(Boolean), createdAt: row.created_at, expiresAt: row.expires_at, revokedAt: row.revoked_at };
}

/**
 * A human's recorded, expiring, revocable permission for an agent to act for them with some scopes
 * (consent in the authorization code flow, or an admin). Token exchange (RFC 8693) never grants more.
 */
export class DelegationService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #defaultDays: number;

  constructor(store: Store, audit: AuditLog, options: { defaultDays: number }) {
    this.#store = store;
    this.#audit = audit;
    this.#defaultDays = options.defaultDays;
  }

  async grant(input: { humanId: string; identityId: string; clientId?: string | null; scopes: string[]; days?: number }, actor: string): Promise<Delegation> {
    return this.#store.transaction(async (tx) => {
      const human = await tx.db.selectFrom('humans').select('status').where('id', '=', input.humanId).executeTakeFirst();
      if (!human || human.status !== 'active') throw new MandateError('HUMAN_NOT_ACTIVE', `human ${input.humanId} is not an active human`, 422);
      const identity = await tx.db.selectFrom('identities').select('status').where('id', '=', input.identityId).executeTakeFirst();
      if (!identity) throw new MandateError('IDENTITY_NOT_FOUND', `identity ${input.identityId} not found`, 422);
      if (identity.status !== 'active') throw new MandateError('IDENTITY_NOT_ACTIVE', `identity ${input.identityId} is ${identity.status}`, 409);
      const now = new Date();
      const row = {
        id: newId('dlg'),
        human_id: input.humanId,
        identity_id: input.identityId,
        client_id: input.clientId ?? null,
        scopes: [...new Set(input.scopes)].join(' '),
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + (input.days ?? this.#defaultDays) * 86_400_000).toISOString(),
        revoked_at: null,
      };
      await tx.db.insertInto('oauth_delegations').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'delegation.grant', target: row.id, outcome: 'success', details: { humanId: row.human_id, identityId: row.identity_id, scopes: row.scopes, expiresAt: row.expires_at } });
      tx.publish(DELEGATION_CHANGED, { id: row.id });
      return toDelegation(row);
    });
  }

  async list(humanId: string, options: { includeInactive?: boolean } = {}): Promise<Delegation[]> {
    let query = this.#store.db.selectFrom('oauth_delegations').selectAll().where('human_id', '=', humanId).orderBy('id');
    if (!options.includeInactive) query = query.where('revoked_at', 'is', null).where('expires_at', '>', new Date().toISOString());
    return (await query.execute()).map(toDelegation);
  }

  /** Revokes a grant; `humanId` limits it to the grant's own human (self-service). */
  async revoke(id: string, actor: string, humanId?: string): Promise<Delegation> {
    return this.#store.transaction(async (tx) => {
      const row = await tx.db.selectFrom('oauth_delegations').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || (humanId !== undefined && row.human_id !== humanId)) throw new MandateError('DELEGATION_NOT_FOUND', `delegation ${id} not found`, 404);
      if (!row.revoked_at) {
        const revokedAt = new Date().toISOString();
        await tx.db.updateTable('oauth_delegations').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
        row.revoked_at = revokedAt;
        await this.#audit.appendIn(tx, { actor, action: 'delegation.revoke', target: id, outcome: 'success', details: { humanId: row.human_id, identityId: row.identity_id } });
        tx.publish(DELEGATION_CHANGED, { id });
      }
      return toDelegation(row);
    });
  }

  /** Scopes the human currently delegates to the identity (union of live grants); empty when none. */
  async delegatedScopes(humanId: string, identityId: string): Promise<string[]> {
    const rows = await this.#store.db
      .selectFrom('oauth_delegations')
      .select('scopes')
      .where('human_id', '=', humanId)
      .where('identity_id', '=', identityId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', new Date().toISOString())
      .execute();
    return [...new Set(rows.flatMap((r) => r.scopes.split(' ').filter(Boolean)))];
  }
}
