import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../core/clock.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database, Store, Tx } from '../store/index.ts';
import { assertEntitlement } from './entitlements.ts';
import { requireGrantablePrincipal, type Principal } from './principals.ts';
import type { SodService } from './sod.ts';
import type { Grant, GrantKind, Page } from './types.ts';
import { toPage } from '../core/page.ts';
import { advisoryXactLock, LOCKS } from '../store/index.ts';

/** Published in a grant's transaction: every replica reloads that principal's entitlements. */
export const GRANTS_CHANGED = 'grants.changed';

// Arbitrary constant naming the advisory lock that serialises grants to one accountable human's
// principals (PostgreSQL), so two concurrent grants cannot both pass a separation-of-duties check.
const LOCK_GRANTS = LOCKS.grants;

interface Held {
  entitlement: string;
  /** Epoch milliseconds, or null for no expiry. */
  expiresAt: number | null;
}

export interface GrantInput {
  principalId: string;
  entitlement: string;
  expiresAt?: string | undefined;
  reason?: string | undefined;
}

export function toGrant(row: Database['grants'], nowMs: number): Grant {
  const expired = row.status === 'active' && row.expires_at !== null && Date.parse(row.expires_at) <= nowMs;
  return {
    id: row.id,
    principalId: row.principal_id,
    entitlement: row.entitlement,
    kind: row.kind,
    status: expired ? 'expired' : row.status,
    requestId: row.request_id,
    grantedBy: row.granted_by,
    reason: row.reason,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    endedAt: row.ended_at ?? (expired ? row.expires_at : null),
    endedBy: row.ended_by,
    endReason: row.end_reason ?? (expired ? 'expired' : null),
  };
}

/**
 * Grants of entitlements to principals, and the in-memory answer to "what does this principal hold
 * now?". The cache holds every active grant (loaded at start) and is refreshed per principal on
 * `grants.changed`, which each change publishes in its own transaction, so every replica refreshes as
 * soon as the change commits. Expiry is checked on every read against the clock, so a just-in-time
 * grant stops counting at its exact expiry even before the expiry job marks it.
 */
export class GrantService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  #sod: SodService | undefined;
  #held = new Map<string, Held[]>();
  readonly #epoch = new Map<string, number>();
  /** The epoch whose reload has been applied to memory, per principal. */
  readonly #applied = new Map<string, number>();
  readonly #pending = new Map<string, Promise<void>>();
  /** Principals whose reload failed: their entitlements are unknown until a reload succeeds. */
  readonly #failed = new Set<string>();
  #complete: Promise<void> | undefined;
  #loaded = false;
  #offs: (() => void)[] = [];
  readonly #listeners: ((principalId: string) => Promise<void> | void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  constructor(store: Store, audit: AuditLog, clock: Clock) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = clock;
  }

  /** Wires the separation-of-duties check run before every grant. */
  useSod(sod: SodService): void {
    this.#sod = sod;
  }

  /** Subscribes to change events and loads every active grant. */
  async start(): Promise<void> {
    this.#offs.push(
      this.#store.events.on(GRANTS_CHANGED, (event) => {
        const principalId = event.data.principalId;
        if (typeof principalId === 'string') this.#invalidate(principalId);
      }),
      this.#store.events.on('resync', () => {
        const before = [...this.#held.keys()];
        this.#loaded = false;
        this.#complete = undefined;
        // Until this succeeds, lookups load again on use (`#loaded` is false); a failure reaches the
        // change-event bus, which logs it and resyncs again later.
        return this.#loadAll().then(() => this.#notify(new Set([...before, ...this.#held.keys()])));
      }),
    );
    await this.#loadAll();
    this.#schedule();
  }

  stop(): void {
    for (const off of this.#offs) off();
    this.#offs = [];
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Calls `listener(principalId)` whenever that principal's entitlements may have changed: after its
   * grants were reloaded (a change on any replica) and when one of its grants reaches its expiry time.
   * The reload waits for listeners, so `entitlementsOf` after a change also means "projected".
   */
  onChange(listener: (principalId: string) => Promise<void> | void): void {
    this.#listeners.push(listener);
  }

  // ---- reads --------------------------------------------------------------------------------------

  /**
   * The entitlements a principal holds now (active, unexpired), sorted. Answers from memory; waits only
   * while that principal's grants are being reloaded after a change. Throws GRANTS_UNAVAILABLE when the
   * store could not be read, so callers deny (fail closed).
   */
  async entitlementsOf(principalId: string): Promise<string[]> {
    if (!this.#loaded) await (this.#complete ?? this.#loadAll());
    for (let i = 0; i < 3; i++) {
      const pending = this.#pending.get(principalId);
      if (!pending) break;
      await pending;
    }
    if (this.#failed.has(principalId)) await this.#reload(principalId, this.#bump(principalId));
    if (this.#failed.has(principalId)) throw new MandateError('GRANTS_UNAVAILABLE', 'entitlements cannot be read right now', 503);
    return this.#current(principalId);
  }

  /**
   * The same, synchronously, for hot paths that cannot wait (entity projection). Undefined while the
   * principal's grants are being reloaded or unreadable: the caller must then treat the principal as
   * holding nothing it would need to be permitted, or await `entitlementsOf`.
   */
  entitlementsOfSync(principalId: string): string[] | undefined {
    if (!this.#loaded || this.#failed.has(principalId) || (this.#epoch.get(principalId) ?? 0) !== (this.#applied.get(principalId) ?? 0)) return undefined;
    return this.#current(principalId);
  }

  /** Resolves once no reload is in flight (tests, and callers wanting a settled view). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0 || !this.#loaded) {
      if (!this.#loaded) await (this.#complete ?? this.#loadAll());
      await Promise.all([...this.#pending.values()]);
    }
  }

  async get(id: string): Promise<Grant> {
    const row = await this.#store.db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('grant', id);
    return toGrant(row, this.#clock.now().getTime());
  }

  async list(filter: { principalId?: string | undefined; entitlement?: string | undefined; status?: Grant['status'] | undefined; kind?: GrantKind | undefined; cursor?: string | undefined; limit: number }): Promise<Page<Grant>> {
    const now = this.#clock.now();
    const nowIso = now.toISOString();
    let query = this.#store.db.selectFrom('grants').selectAll().orderBy('id').limit(filter.limit + 1);
    if (filter.principalId) query = query.where('principal_id', '=', filter.principalId);
    if (filter.entitlement) query = query.where('entitlement', '=', filter.entitlement);
    if (filter.kind) query = query.where('kind', '=', filter.kind);
    if (filter.status === 'active') query = query.where('status', '=', 'active').where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)]));
    if (filter.status === 'revoked') query = query.where('status', '=', 'revoked');
    if (filter.status === 'expired') query = query.where((eb) => eb.or([eb('status', '=', 'expired'), eb.and([eb('status', '=', 'active'), eb('expires_at', '<=', nowIso)])]));
    if (filter.cursor) query = query.where('id', '>', filter.cursor);
    return toPage(await query.execute(), filter.limit, (r) => toGrant(r, now.getTime()));
  }

  /** Active, unexpired grants of these principals, read inside a transaction (for checks that must be exact). */
  async activeIn(db: Tx['db'] | Store['db'], principalIds: readonly string[]): Promise<Database['grants'][]> {
    if (principalIds.length === 0) return [];
    const nowIso = this.#clock.now().toISOString();
    return db
      .selectFrom('grants')
      .selectAll()
      .where('principal_id', 'in', [...new Set(principalIds)])
      .where('status', '=', 'active')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)]))
      .orderBy('id')
      .execute();
  }

  // ---- writes -------------------------------------------------------------------------------------

  /** A standing grant (by an administrator), optionally with an expiry. */
  async grant(input: GrantInput, actor: string): Promise<Grant> {
    assertEntitlement(input.entitlement);
    const now = this.#clock.now();
    if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= now.getTime()) {
      throw new MandateError('GRANT_EXPIRY_INVALID', 'expiresAt must be in the future', 400);
    }
    const grant = await this.#refusalsAudited(actor, 'grant.create', input, () =>
      this.#store.transaction(async (tx) => {
        const principal = await this.lockPrincipal(tx, input.principalId);
        const duplicate = await tx.db
          .selectFrom('grants')
          .select('id')
          .where('principal_id', '=', input.principalId)
          .where('entitlement', '=', input.entitlement)
          .where('kind', '=', 'standing')
          .where('status', '=', 'active')
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
          .executeTakeFirst();
        if (duplicate) throw new MandateError('GRANT_EXISTS', `${input.principalId} already holds ${input.entitlement} (grant ${duplicate.id})`, 409, { grantId: duplicate.id });
        return this.grantIn(tx, principal, { kind: 'standing', entitlement: input.entitlement, expiresAt: input.expiresAt ?? null, reason: input.reason ?? null, requestId: null }, actor);
      }),
    );
    await this.entitlementsOf(grant.principalId);
    return grant;
  }

  /**
   * Takes the lock that serialises grants to one accountable human's principals (a human and the agents
   * they own), then loads the principal. Call first in any transaction that grants.
   */
  async lockPrincipal(tx: Tx, principalId: string): Promise<Principal> {
    const principal = await requireGrantablePrincipal(tx.db, principalId);
    if (this.#store.dialect === 'postgres') {
      const key = principal.kind === 'human' ? principal.id : (principal.ownerId ?? principal.id);
      await advisoryXactLock(tx.db, LOCK_GRANTS, key);
    }
    return principal;
  }

  /**
   * Inserts a grant inside the caller's transaction after the separation-of-duties check (409
   * SOD_CONFLICT naming the rule). The caller must have called `lockPrincipal` in this transaction.
   */
  async grantIn(tx: Tx, principal: Principal, grant: { kind: GrantKind; entitlement: string; expiresAt: string | null; reason: string | null; requestId: string | null }, actor: string): Promise<Grant> {
    assertEntitlement(grant.entitlement);
    if (this.#sod) {
      const conflict = await this.#sod.conflictFor(tx, principal, grant.entitlement);
      if (conflict) {
        throw new MandateError('SOD_CONFLICT', `granting ${grant.entitlement} to ${principal.id} violates separation-of-duties rule "${conflict.rule}": conflicts with ${conflict.conflictsWith} held by ${conflict.heldBy}`, 409, { ...conflict });
      }
    }
    const now = this.#clock.now();
    const row: Database['grants'] = {
      id: newId('gnt', now.getTime()),
      principal_id: principal.id,
      entitlement: grant.entitlement,
      kind: grant.kind,
      status: 'active',
      request_id: grant.requestId,
      granted_by: actor,
      reason: grant.reason,
      created_at: now.toISOString(),
      expires_at: grant.expiresAt,
      ended_at: null,
      ended_by: null,
      end_reason: null,
    };
    await tx.db.insertInto('grants').values(row).execute();
    await this.#audit.appendIn(tx, { actor, action: 'grant.create', target: principal.id, outcome: 'success', details: { grantId: row.id, entitlement: row.entitlement, kind: row.kind, expiresAt: row.expires_at, requestId: row.request_id, reason: row.reason } });
    tx.publish(GRANTS_CHANGED, { principalId: principal.id });
    return toGrant(row, now.getTime());
  }

  /** Revokes a grant now (early revoke of a just-in-time grant included). */
  async revoke(id: string, reason: string | null, actor: string): Promise<Grant> {
    const grant = await this.#store.transaction(async (tx) => this.revokeIn(tx, id, reason, actor, 'grant.revoke'));
    await this.entitlementsOf(grant.principalId);
    return grant;
  }

  async revokeIn(tx: Tx, id: string, reason: string | null, actor: string, action: string): Promise<Grant> {
    const row = await tx.db.selectFrom('grants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('grant', id);
    const now = this.#clock.now();
    const current = toGrant(row, now.getTime());
    if (current.status !== 'active') throw new MandateError('GRANT_NOT_ACTIVE', `grant ${id} is already ${current.status}`, 409, { grantStatus: current.status });
    const ended = { status: 'revoked' as const, ended_at: now.toISOString(), ended_by: actor, end_reason: reason ?? 'revoked' };
    await tx.db.updateTable('grants').set(ended).where('id', '=', id).execute();
    if (row.request_id) await tx.db.updateTable('access_requests').set({ status: 'revoked' }).where('id', '=', row.request_id).where('status', '=', 'approved').execute();
    await this.#audit.appendIn(tx, { actor, action, target: row.principal_id, outcome: 'success', details: { grantId: id, entitlement: row.entitlement, kind: row.kind, reason: ended.end_reason, requestId: row.request_id } });
    tx.publish(GRANTS_CHANGED, { principalId: row.principal_id });
    return toGrant({ ...row, ...ended }, now.getTime());
  }

  /**
   * The expiry job: marks every active grant whose time has passed as expired, each with its audit
   * record. Idempotent (a second run finds nothing), and exactness does not depend on it: reads already
   * ignore expired grants.
   */
  async expireDue(actor = 'system:governance.expiry'): Promise<{ expired: string[] }> {
    const nowIso = this.#clock.now().toISOString();
    const due = await this.#store.db.selectFrom('grants').selectAll().where('status', '=', 'active').where('expires_at', '<=', nowIso).orderBy('id').limit(1000).execute();
    const expired: string[] = [];
    for (const row of due) {
      await this.#store.transaction(async (tx) => {
        const result = await tx.db.updateTable('grants').set({ status: 'expired', ended_at: row.expires_at, ended_by: actor, end_reason: 'expired' }).where('id', '=', row.id).where('status', '=', 'active').executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return;
        if (row.request_id) await tx.db.updateTable('access_requests').set({ status: 'expired' }).where('id', '=', row.request_id).where('status', '=', 'approved').execute();
        await this.#audit.appendIn(tx, { actor, action: 'grant.expire', target: row.principal_id, outcome: 'success', details: { grantId: row.id, entitlement: row.entitlement, kind: row.kind, expiresAt: row.expires_at, requestId: row.request_id } });
        tx.publish(GRANTS_CHANGED, { principalId: row.principal_id });
        expired.push(row.id);
      });
    }
    for (const principalId of new Set(due.map((r) => r.principal_id))) await this.entitlementsOf(principalId).catch(() => undefined);
    return { expired };
  }

  /**
   * Revokes the grants of principals that can no longer hold anything: decommissioned agents and
   * workloads, deleted humans (the leaver flow's last step). Run by the expiry job; idempotent.
   */
  async revokeOfGone(actor = 'system:governance.expiry'): Promise<{ revoked: string[] }> {
    const gone = await this.#store.db
      .selectFrom('grants')
      .leftJoin('identities', 'identities.id', 'grants.principal_id')
      .leftJoin('humans', 'humans.id', 'grants.principal_id')
      .select(['grants.id', 'grants.principal_id'])
      .where('grants.status', '=', 'active')
      .where((eb) => eb.or([eb('identities.status', '=', 'decommissioned'), eb('humans.status', '=', 'deleted')]))
      .orderBy('grants.id')
      .limit(1000)
      .execute();
    const revoked: string[] = [];
    for (const row of gone) {
      try {
        await this.#store.transaction(async (tx) => this.revokeIn(tx, row.id, 'principal decommissioned or deleted', actor, 'grant.revoke'));
        revoked.push(row.id);
      } catch (error) {
        // Revoked or expired meanwhile (another path got there first): nothing to do.
        if (!(error instanceof MandateError && error.code === 'GRANT_NOT_ACTIVE')) throw error;
      }
    }
    for (const principalId of new Set(gone.map((r) => r.principal_id))) await this.entitlementsOf(principalId).catch(() => undefined);
    return { revoked };
  }

  // ---- cache --------------------------------------------------------------------------------------

  #current(principalId: string): string[] {
    const now = this.#clock.now().getTime();
    const out = new Set<string>();
    for (const h of this.#held.get(principalId) ?? []) if (h.expiresAt === null || h.expiresAt > now) out.add(h.entitlement);
    return [...out].sort();
  }

  #bump(principalId: string): number {
    const next = (this.#epoch.get(principalId) ?? 0) + 1;
    this.#epoch.set(principalId, next);
    return next;
  }

  #invalidate(principalId: string): void {
    const epoch = this.#bump(principalId);
    const reload = this.#reload(principalId, epoch);
    this.#pending.set(principalId, reload);
    void reload.finally(() => {
      if (this.#pending.get(principalId) === reload) this.#pending.delete(principalId);
    });
  }

  async #reload(principalId: string, epoch: number): Promise<void> {
    try {
      const rows = await this.#store.db.selectFrom('grants').select(['entitlement', 'expires_at']).where('principal_id', '=', principalId).where('status', '=', 'active').execute();
      // A later change started a newer reload: this one's answer may be stale.
      if (this.#epoch.get(principalId) !== epoch) return;
      this.#failed.delete(principalId);
      this.#applied.set(principalId, epoch);
      if (rows.length === 0) this.#held.delete(principalId);
      else this.#held.set(principalId, rows.map((r) => ({ entitlement: r.entitlement, expiresAt: r.expires_at === null ? null : Date.parse(r.expires_at) })));
    } catch {
      if (this.#epoch.get(principalId) === epoch) {
        this.#held.delete(principalId);
        this.#failed.add(principalId);
        this.#applied.set(principalId, epoch);
      }
    }
    this.#schedule();
    await this.#notify([principalId]);
  }

  async #notify(principalIds: Iterable<string>): Promise<void> {
    for (const id of principalIds) {
      for (const listener of this.#listeners) {
        try {
          await listener(id);
        } catch {
          // A listener's failure (e.g. a projection) must not stop the others; it logs its own errors.
        }
      }
    }
  }

  /**
   * Arms one process-local timer for the next expiry among held grants: when it fires, listeners hear
   * about the principals whose grants just ran out, so projections drop them at the exact time even
   * though nothing was written (the expiry job writes later).
   */
  #schedule(): void {
    const now = this.#clock.now().getTime();
    let next = Infinity;
    for (const list of this.#held.values()) for (const h of list) if (h.expiresAt !== null && h.expiresAt > now && h.expiresAt < next) next = h.expiresAt;
    if (next === this.#timerAt && this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = next;
    if (next === Infinity || this.#offs.length === 0) return;
    // setTimeout holds at most ~24.8 days; re-arm from there.
    const delay = Math.min(Math.max(next - now, 0), 2 ** 31 - 1);
    this.#timer = setTimeout(() => void this.sweep(), delay + 1);
    this.#timer.unref();
  }

  /**
   * Tells listeners about every principal holding a grant that has expired by now and drops those
   * grants from memory. Runs on the expiry timer; tests that move the clock call it directly.
   */
  async sweep(): Promise<string[]> {
    const now = this.#clock.now().getTime();
    const touched: string[] = [];
    for (const [principalId, list] of this.#held) {
      const live = list.filter((h) => h.expiresAt === null || h.expiresAt > now);
      if (live.length === list.length) continue;
      touched.push(principalId);
      if (live.length === 0) this.#held.delete(principalId);
      else this.#held.set(principalId, live);
    }
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#schedule();
    await this.#notify(touched);
    return touched;
  }

  #loadAll(): Promise<void> {
    this.#complete ??= (async () => {
      // Principals changed while this loads keep what their own (newer) reload found.
      const epochs = new Map(this.#epoch);
      const rows = await this.#store.db.selectFrom('grants').select(['principal_id', 'entitlement', 'expires_at']).where('status', '=', 'active').execute();
      const held = new Map<string, Held[]>();
      for (const r of rows) {
        const list = held.get(r.principal_id) ?? [];
        list.push({ entitlement: r.entitlement, expiresAt: r.expires_at === null ? null : Date.parse(r.expires_at) });
        held.set(r.principal_id, list);
      }
      for (const [principalId, epoch] of this.#epoch) {
        if (epochs.get(principalId) === epoch) continue;
        const newer = this.#held.get(principalId);
        if (newer) held.set(principalId, newer);
        else held.delete(principalId);
      }
      this.#held = held;
      this.#failed.clear();
      this.#loaded = true;
    })().catch((error: unknown) => {
      this.#complete = undefined;
      throw error;
    });
    return this.#complete;
  }

  /** Runs a change; a refusal (4xx) is recorded in the audit chain before it is thrown. */
  async #refusalsAudited<T>(actor: string, action: string, input: GrantInput, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof MandateError && error.status < 500) {
        await this.#audit.append({ actor, action, target: input.principalId, outcome: 'denied', details: { entitlement: input.entitlement, code: error.code, ...(error.code === 'SOD_CONFLICT' && { rule: error.details?.rule }) } });
      }
      throw error;
    }
  }
}
