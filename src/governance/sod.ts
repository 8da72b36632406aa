import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../core/clock.ts';
import { MandateError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database, Store, Tx } from '../store/index.ts';
import { isEntitlementPattern, matchesPattern, toolOf } from './entitlements.ts';
import type { GrantService } from './grants.ts';
import type { Principal } from './principals.ts';
import type { SessionToolPair, SodConflict, SodEnforcement, SodRule, SodViolation } from './types.ts';

export const SOD_CHANGED = 'sod.changed';

export interface SodRuleInput {
  name: string;
  description?: string | undefined;
  /** Any two of these conflict. */
  entitlements?: string[] | undefined;
  /** Explicit conflicting pairs. */
  pairs?: [string, string][] | undefined;
  /** Count an agent (or workload) together with the human who owns it. */
  countDelegation?: boolean | undefined;
  /** Checked when granting (`grant`), by the gateway within one session (`session`), or both. */
  enforce?: SodEnforcement | undefined;
}

function toRule(row: Database['sod_rules']): SodRule {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    entitlements: JSON.parse(row.entitlements) as string[],
    pairs: JSON.parse(row.pairs) as [string, string][],
    countDelegation: row.count_delegation === 1,
    enforce: row.enforce,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

/** Every conflicting pair a rule names: explicit pairs plus each two of `entitlements`. */
export function rulePairs(rule: Pick<SodRule, 'entitlements' | 'pairs'>): [string, string][] {
  const pairs: [string, string][] = [...rule.pairs];
  for (let i = 0; i < rule.entitlements.length; i++) {
    for (let j = i + 1; j < rule.entitlements.length; j++) pairs.push([rule.entitlements[i]!, rule.entitlements[j]!]);
  }
  return pairs;
}

/**
 * The conflict granting `entitlement` would create with `held` (entitlement → holder), or undefined.
 * Holding the same entitlement twice is not a conflict.
 */
export function findConflict(rule: SodRule, entitlement: string, held: ReadonlyMap<string, string>): SodConflict | undefined {
  for (const [a, b] of rulePairs(rule)) {
    for (const [mine, other] of [[a, b], [b, a]] as const) {
      if (!matchesPattern(mine, entitlement)) continue;
      for (const [h, holder] of held) {
        if (h !== entitlement && matchesPattern(other, h)) return { rule: rule.name, ruleId: rule.id, entitlement, conflictsWith: h, heldBy: holder };
      }
    }
  }
  return undefined;
}

/**
 * Separation of duties: entitlements one identity must not hold together (an agent and its owner
 * counted together where a rule says so). Checked in the transaction of every grant, reported as
 * violations for what is already held, and (for `tool:` pairs) given to the gateway to enforce within
 * one session.
 */
export class SodService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #clock: Clock;
  readonly #grants: GrantService;
  #rules: SodRule[] = [];
  #sessionPairs: SessionToolPair[] = [];
  #loading: Promise<void> | undefined;
  #off: (() => void) | undefined;

  constructor(store: Store, audit: AuditLog, clock: Clock, grants: GrantService) {
    this.#store = store;
    this.#audit = audit;
    this.#clock = clock;
    this.#grants = grants;
  }

  async start(): Promise<void> {
    // Returned: a failed load reaches the change-event bus, which logs it and resyncs again later.
    const reload = () => (this.#loading = this.#load());
    const offs = [this.#store.events.on(SOD_CHANGED, reload), this.#store.events.on('resync', reload)];
    this.#off = () => offs.forEach((off) => off());
    this.#loading = this.#load();
    await this.#loading;
  }

  stop(): void {
    this.#off?.();
  }

  async #load(): Promise<void> {
    const rows = await this.#store.db.selectFrom('sod_rules').selectAll().orderBy('name').execute();
    this.#rules = rows.map(toRule);
    const pairs: SessionToolPair[] = [];
    for (const rule of this.#rules) {
      if (rule.enforce === 'grant') continue;
      for (const [a, b] of rulePairs(rule)) {
        const ta = toolOf(a) ?? (a === '*' ? '*' : undefined);
        const tb = toolOf(b) ?? (b === '*' ? '*' : undefined);
        if (ta !== undefined && tb !== undefined) pairs.push({ rule: rule.name, a: ta, b: tb });
      }
    }
    this.#sessionPairs = pairs;
  }

  // ---- rules --------------------------------------------------------------------------------------

  async createRule(input: SodRuleInput, actor: string): Promise<SodRule> {
    const entitlements = [...new Set(input.entitlements ?? [])];
    const pairs = input.pairs ?? [];
    for (const e of [...entitlements, ...pairs.flat()]) {
      if (!isEntitlementPattern(e)) throw new MandateError('ENTITLEMENT_INVALID', `"${e.slice(0, 80)}" is not an entitlement or pattern`, 400);
    }
    if (entitlements.length === 1) throw new MandateError('SOD_RULE_INVALID', 'entitlements must name at least two entitlements (any two of them conflict)', 400);
    if (pairs.some(([a, b]) => a === b && !a.includes('*'))) throw new MandateError('SOD_RULE_INVALID', 'a pair must name two different entitlements', 400);
    if (entitlements.length + pairs.length === 0) throw new MandateError('SOD_RULE_INVALID', 'give entitlements (any two conflict) or pairs', 400);
    const enforce = input.enforce ?? 'grant';
    const row: Database['sod_rules'] = {
      id: newId('sod'),
      name: input.name,
      description: input.description ?? null,
      entitlements: JSON.stringify(entitlements),
      pairs: JSON.stringify(pairs),
      count_delegation: input.countDelegation ? 1 : 0,
      enforce,
      created_by: actor,
      created_at: this.#clock.now().toISOString(),
    };
    const rule = toRule(row);
    if (enforce !== 'grant' && !rulePairs(rule).some(([a, b]) => toolOf(a) !== undefined && toolOf(b) !== undefined)) {
      throw new MandateError('SOD_RULE_INVALID', 'a session rule needs at least one pair of tool: entitlements (the gateway sees tools, not roles)', 400);
    }
    await this.#store.transaction(async (tx) => {
      const clash = await tx.db.selectFrom('sod_rules').select('id').where('name', '=', input.name).executeTakeFirst();
      if (clash) throw new MandateError('SOD_RULE_EXISTS', `a rule named ${input.name} exists`, 409, { id: clash.id });
      await tx.db.insertInto('sod_rules').values(row).execute();
      await this.#audit.appendIn(tx, { actor, action: 'sod.rule.create', target: row.id, outcome: 'success', details: { name: rule.name, entitlements, pairs, countDelegation: rule.countDelegation, enforce } });
      tx.publish(SOD_CHANGED, { id: row.id });
    });
    await this.#loading;
    return rule;
  }

  async listRules(): Promise<SodRule[]> {
    const rows = await this.#store.db.selectFrom('sod_rules').selectAll().orderBy('name').execute();
    return rows.map(toRule);
  }

  async deleteRule(id: string, actor: string): Promise<void> {
    await this.#store.transaction(async (tx) => {
      const row = await tx.db.selectFrom('sod_rules').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('sod_rule', id);
      await tx.db.deleteFrom('sod_rules').where('id', '=', id).execute();
      await this.#audit.appendIn(tx, { actor, action: 'sod.rule.delete', target: id, outcome: 'success', details: { name: row.name } });
      tx.publish(SOD_CHANGED, { id });
    });
    await this.#loading;
  }

  // ---- checks -------------------------------------------------------------------------------------

  /**
   * The first conflict granting `entitlement` to `principal` would create, read inside the grant's
   * transaction (rules and holdings as committed, the grant lock held), or undefined.
   */
  async conflictFor(tx: Tx, principal: Principal, entitlement: string): Promise<SodConflict | undefined> {
    const rows = await tx.db.selectFrom('sod_rules').selectAll().where('enforce', '!=', 'session').orderBy('name').execute();
    if (rows.length === 0) return undefined;
    const rules = rows.map(toRule);
    const own = await this.#grants.activeIn(tx.db, [principal.id]);
    const heldAlone = new Map(own.map((g) => [g.entitlement, principal.id]));
    // Delegation partners: an agent's owner; a human's agents and workloads.
    let partners: Map<string, Map<string, string>> | undefined;
    for (const rule of rules) {
      const alone = findConflict(rule, entitlement, heldAlone);
      if (alone) return alone;
      if (!rule.countDelegation) continue;
      partners ??= await this.#partnerHoldings(tx, principal);
      for (const held of partners.values()) {
        const combined = new Map([...held, ...heldAlone]);
        const conflict = findConflict(rule, entitlement, combined);
        if (conflict) return conflict;
      }
    }
    return undefined;
  }

  async #partnerHoldings(tx: Tx, principal: Principal): Promise<Map<string, Map<string, string>>> {
    let partnerIds: string[];
    if (principal.kind === 'human') {
      const owned = await tx.db.selectFrom('identities').select('id').where('owner_id', '=', principal.id).where('status', '!=', 'decommissioned').execute();
      partnerIds = owned.map((r) => r.id);
    } else {
      partnerIds = principal.ownerId ? [principal.ownerId] : [];
    }
    const rows = await this.#grants.activeIn(tx.db, partnerIds);
    const out = new Map<string, Map<string, string>>(partnerIds.map((id) => [id, new Map()]));
    for (const r of rows) out.get(r.principal_id)?.set(r.entitlement, r.principal_id);
    return out;
  }

  /** Existing holdings that break a rule (as findings): each principal alone, and agents with their owners where counted. */
  async violations(): Promise<SodViolation[]> {
    const rules = (await this.listRules()).filter((r) => r.enforce !== 'session');
    if (rules.length === 0) return [];
    const nowIso = this.#clock.now().toISOString();
    const grants = await this.#store.db
      .selectFrom('grants')
      .select(['principal_id', 'entitlement'])
      .where('status', '=', 'active')
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso)]))
      .execute();
    const held = new Map<string, Set<string>>();
    for (const g of grants) {
      const set = held.get(g.principal_id) ?? new Set<string>();
      set.add(g.entitlement);
      held.set(g.principal_id, set);
    }
    const nhis = held.size === 0 ? [] : await this.#store.db.selectFrom('identities').select(['id', 'owner_id']).where('id', 'in', [...held.keys()]).where('status', '!=', 'decommissioned').execute();
    const ownerOf = new Map(nhis.map((r) => [r.id, r.owner_id]));
    const found: SodViolation[] = [];
    const seen = new Set<string>();
    const report = (rule: SodRule, principalId: string, partnerId: string | null, ents: Map<string, string>) => {
      for (const [a, b] of rulePairs(rule)) {
        for (const [ea, ha] of ents) {
          if (!matchesPattern(a, ea)) continue;
          for (const [eb, hb] of ents) {
            if (ea === eb || !matchesPattern(b, eb)) continue;
            const key = [rule.id, principalId, ...[`${ha}|${ea}`, `${hb}|${eb}`].sort()].join(' ');
            if (seen.has(key)) continue;
            seen.add(key);
            found.push({ rule: rule.name, ruleId: rule.id, principalId, partnerId, entitlements: [ea, eb], heldBy: [ha, hb] });
          }
        }
      }
    };
    for (const [principalId, ents] of held) {
      const own = new Map([...ents].map((e) => [e, principalId]));
      for (const rule of rules) {
        report(rule, principalId, null, own);
        const ownerId = ownerOf.get(principalId);
        if (rule.countDelegation && ownerId) {
          const combined = new Map([...[...(held.get(ownerId) ?? [])].map((e): [string, string] => [e, ownerId]), ...own]);
          // Only pairs that need both holders: conflicts within one principal were reported above.
          const before = found.length;
          report(rule, principalId, ownerId, combined);
          for (let i = found.length - 1; i >= before; i--) if (found[i]!.heldBy[0] === found[i]!.heldBy[1]) found.splice(i, 1);
        }
      }
    }
    return found;
  }

  // ---- for the gateway ----------------------------------------------------------------------------

  /**
   * Pairs of tools that must not both be used in one session (rules with `enforce: session|both`), as
   * `<server>/<tool>` with `*` wildcards. Answered from memory, kept current by `sod.changed`.
   */
  sessionToolPairs(): readonly SessionToolPair[] {
    return this.#sessionPairs;
  }

  /**
   * The rule calling `tool` would break in a session that already used `usedTools`, or undefined. The
   * gateway denies the call (and audits) when this names a rule.
   */
  sessionConflict(usedTools: Iterable<string>, tool: string): SessionToolPair | undefined {
    const used = [...usedTools];
    for (const pair of this.#sessionPairs) {
      for (const [mine, other] of [[pair.a, pair.b], [pair.b, pair.a]] as const) {
        if (!matchesPattern(mine, tool)) continue;
        if (used.some((u) => u !== tool && matchesPattern(other, u))) return pair;
      }
    }
    return undefined;
  }
}
