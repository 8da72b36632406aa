import type { AuditLog } from '../audit/index.ts';
import type { EntityJson } from '../policy/index.ts';
import type { Store } from '../store/index.ts';
import { adjustableClock, type AdjustableClock } from './clock.ts';
import { CertificationService } from './certifications.ts';
import { cedarProjection, type CedarEntitlementProjection } from './entitlements.ts';
import { GrantService } from './grants.ts';
import { AccessRequestService } from './requests.ts';
import { SodService } from './sod.ts';

export interface GovernanceOptions {
  masterKey: Uint8Array;
  /** Ceiling on any just-in-time duration (seconds). */
  maxJitSeconds: number;
  /** Allow http:// reminder webhooks (dev, tests). */
  allowHttpWebhooks: boolean;
  /** Time source; tests advance it instead of sleeping. */
  clock?: AdjustableClock;
  /** Pending access requests nobody decided lapse after this long (default 7 days). */
  pendingRequestTtlSeconds?: number;
}

/** The jobs governance runs, by name (`services.scheduler.runOnce(name)` runs one now). */
export const GOVERNANCE_JOBS = {
  expiry: 'governance.expiry',
  certifications: 'governance.certifications',
} as const;

interface JobHost {
  add(job: { name: string; everyMs: number; run(): Promise<unknown> }): void;
}

/**
 * Grants, just-in-time access requests, separation of duties and certification campaigns, wired
 * together. Other domains use `entitlementsOf` / `cedarEntitlements` (policy entity projection) and
 * `sod.sessionConflict` (gateway).
 */
export class Governance {
  readonly clock: AdjustableClock;
  readonly grants: GrantService;
  readonly sod: SodService;
  readonly requests: AccessRequestService;
  readonly certifications: CertificationService;
  readonly #pendingTtlSeconds: number;

  constructor(store: Store, audit: AuditLog, options: GovernanceOptions) {
    this.clock = options.clock ?? adjustableClock();
    this.#pendingTtlSeconds = options.pendingRequestTtlSeconds ?? 7 * 86_400;
    this.grants = new GrantService(store, audit, this.clock);
    this.sod = new SodService(store, audit, this.clock, this.grants);
    this.grants.useSod(this.sod);
    this.requests = new AccessRequestService(store, audit, this.clock, this.grants, this.sod, { maxJitSeconds: options.maxJitSeconds });
    this.certifications = new CertificationService(store, audit, this.clock, this.grants, { masterKey: options.masterKey, allowHttpWebhooks: options.allowHttpWebhooks });
  }

  /** Registers the expiry and certification jobs (each run by one replica at a time, idempotent, audited). */
  registerJobs(scheduler: JobHost, intervals: { expiryMs?: number; certificationsMs?: number } = {}): void {
    scheduler.add({
      name: GOVERNANCE_JOBS.expiry,
      everyMs: intervals.expiryMs ?? 60_000,
      run: async () => ({
        grants: await this.grants.expireDue(),
        gone: await this.grants.revokeOfGone(),
        lapsed: await this.requests.lapsePending(this.#pendingTtlSeconds),
      }),
    });
    scheduler.add({
      name: GOVERNANCE_JOBS.certifications,
      everyMs: intervals.certificationsMs ?? 60_000,
      run: async () => ({ reminders: await this.certifications.remindDue(), deadlines: await this.certifications.closeDue() }),
    });
  }

  async start(): Promise<void> {
    await this.grants.start();
    await this.sod.start();
  }

  stop(): void {
    this.grants.stop();
    this.sod.stop();
  }

  /** A principal's entitlements now (active, unexpired). */
  entitlementsOf(principalId: string): Promise<string[]> {
    return this.grants.entitlementsOf(principalId);
  }

  /** What the principal's entitlements add to its Cedar entity: `entitlements` attribute and `Role` parents. */
  async cedarEntitlements(principalId: string): Promise<CedarEntitlementProjection> {
    return cedarProjection(await this.grants.entitlementsOf(principalId));
  }

  /**
   * A decorator for the policy engine's principal projection (`pdp.addPrincipalDecorator`): adds
   * `entitlements: Set<String>` to every Human, Agent and Workload entity, and `Role::"<name>"` parents
   * for `role:` entitlements. While a principal's grants are being reloaded it projects no
   * entitlements (fail closed); the reload then notifies `onEntitlementsChanged` to project again.
   */
  principalDecorator(): (entity: EntityJson) => EntityJson {
    return (entity) => {
      const uid = '__entity' in entity.uid ? entity.uid.__entity : entity.uid;
      if (uid.type !== 'Human' && uid.type !== 'Agent' && uid.type !== 'Workload') return entity;
      const projection = this.cedarEntitlementsSync(uid.id) ?? cedarProjection([]);
      const known = new Set(entity.parents.map((p) => ('__entity' in p ? `${p.__entity.type}::${p.__entity.id}` : `${p.type}::${p.id}`)));
      return {
        ...entity,
        attrs: { ...entity.attrs, entitlements: projection.attrs.entitlements },
        parents: [...entity.parents, ...projection.parents.filter((p) => !known.has(`${p.type}::${p.id}`))],
      };
    };
  }

  /**
   * Calls `listener(principalId, cedarType)` whenever a principal's entitlements may have changed (a
   * grant, revoke or expiry on any replica, or an expiry time reached): wire it to the policy engine's
   * `refreshPrincipal(type, id)`.
   */
  onEntitlementsChanged(listener: (principalId: string, cedarType: 'Human' | 'Agent' | 'Workload') => Promise<void> | void): void {
    this.grants.onChange((principalId) => listener(principalId, cedarTypeOf(principalId)));
  }

  /** The same, synchronously; undefined while that principal is being refreshed (then await the async form). */
  cedarEntitlementsSync(principalId: string): CedarEntitlementProjection | undefined {
    const held = this.grants.entitlementsOfSync(principalId);
    return held === undefined ? undefined : cedarProjection(held);
  }
}

/** The Cedar entity type of a principal id (ids carry their kind as a prefix). */
export function cedarTypeOf(principalId: string): 'Human' | 'Agent' | 'Workload' {
  if (principalId.startsWith('agt_')) return 'Agent';
  if (principalId.startsWith('wkl_')) return 'Workload';
  return 'Human';
}
