import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../core/crypto.ts';
import { MandateError, storeUnavailable } from '../core/errors.ts';
import { HUMAN_CHANGED, IDENTITY_CHANGED } from '../identity/index.ts';
import type {
  EntityStore} from '../policy/index.ts';
import {
  authorize,
  compilePolicySet,
  createEntityStore,
  MAX_ANCESTOR_ENTRIES,
  MAX_ENTITY_HIERARCHY_DEPTH,
  type AuthorizationRequest,
  type CompiledPolicySet,
  type Decision,
  type EntityJson,
  type EntityOverride,
  type TemplateLink,
} from '../policy/index.ts';
import { advisoryXactLock, LOCKS, type Store } from '../store/index.ts';
import { validateAgainstMandateSchema } from './mandate-schema.ts';
import { projectGroups, projectHumans, projectIdentities, type PrincipalDecorator } from './projection.ts';

export type PolicyMode = 'enforce' | 'log-only';

export interface PolicyVersion {
  version: number;
  mode: PolicyMode;
  active: boolean;
  note: string | null;
  createdBy: string;
  createdAt: string;
  policies: number;
}

/** Entities another domain owns (the gateway's tools and servers), reloaded whenever one of its topics fires. */
export interface EntitySource {
  name: string;
  topics: string[];
  load(): Promise<EntityJson[]>;
}

export interface DecideOptions {
  explain?: boolean;
  /** Request-scoped attribute overrides (AuthZEN `properties`), merged over stored entities. */
  overrides?: EntityOverride[];
}

export interface DecisionResult extends Decision {
  /** What the policies decided. */
  policyDecision: 'allow' | 'deny';
  /** What the caller must enforce: the policy decision, or `allow` in log-only mode. */
  decision: 'allow' | 'deny';
  mode: PolicyMode;
  policyVersion: number;
}

export interface DecisionLogEntry {
  actor: string;
  /** Where the decision was asked: `authzen`, `gateway`, … */
  source: string;
}

export const POLICY_ACTIVATED = 'policy.activated';
export const ENTITIES_IMPORTED = 'policy.entities.imported';
/** Serialises entity imports across replicas (a PostgreSQL advisory lock). */
const LOCK_ENTITY_IMPORTS = LOCKS.entityImports;

/** Decision requests whose context is larger than this are logged with a digest instead of the context. */
const MAX_LOGGED_CONTEXT = 8 * 1024;

/**
 * The policy decision point: the active policy set (compiled once per version), the entities it
 * decides over (the identity registry projected into Cedar, imported entities, and other domains'
 * sources, kept current by change events), and the decision log.
 *
 * Fail closed: no active policy means every request is denied; a policy set that fails to compile
 * denies everything and says so.
 */
export class PdpService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #logger: Logger;
  #set: CompiledPolicySet = compilePolicySet('');
  #version = 0;
  #mode: PolicyMode = 'enforce';
  /** A reload failed and no resync has succeeded since: decisions are refused (see `decide`). */
  #stale = false;
  /** Counts failed reloads: a resync clears `#stale` only if none failed since it started. */
  #failures = 0;
  #entities: EntityStore = createEntityStore([]);
  readonly #sources: EntitySource[] = [];
  readonly #sourceUids = new Map<string, Uid[]>();
  readonly #decorators: PrincipalDecorator[] = [];
  /** The import in progress, if any (imports in this process run one after another). */
  #importing: Promise<void> = Promise.resolve();
  /** The entity rebuild running, and the one queued after it (see `#reloadAllEntities`). */
  #rebuild: Promise<void> | undefined;
  #rebuildAgain: Promise<void> | undefined;

  constructor(store: Store, audit: AuditLog, logger: Logger) {
    this.#store = store;
    this.#audit = audit;
    this.#logger = logger;
  }

  get entities(): EntityStore {
    return this.#entities;
  }

  get policySet(): CompiledPolicySet {
    return this.#set;
  }

  get activeVersion(): number {
    return this.#version;
  }

  get mode(): PolicyMode {
    return this.#mode;
  }

  async init(): Promise<void> {
    await this.#loadActivePolicy();
    await this.#reloadAllEntities();
    const on = this.#store.events.on.bind(this.#store.events);
    // Handlers return their promise: the replica that made a change answers only once its own
    // decisions reflect it (other replicas follow within milliseconds). A failure is logged and still
    // rejects, so the change-event bus schedules a resync: the projection is rebuilt once the store
    // answers again rather than left as it was.
    on(POLICY_ACTIVATED, () => this.#loadActivePolicy().catch((e) => this.#fail('policy reload', e)));
    on(ENTITIES_IMPORTED, () => this.#reloadImported().catch((e) => this.#fail('entity reload', e)));
    on(IDENTITY_CHANGED, (event) => this.#refreshIdentities([String(event.data.id)]).catch((e) => this.#fail('identity projection', e)));
    on(HUMAN_CHANGED, (event) => this.#refreshHuman(String(event.data.id)).catch((e) => this.#fail('human projection', e)));
    on('resync', () => {
      // Resyncs overlap (the bus's retry, the LISTEN connection coming back): one that started before
      // a failure says nothing about what that failure missed.
      const failures = this.#failures;
      return Promise.all([this.#loadActivePolicy(), this.#reloadAllEntities()]).then(
        () => {
          if (this.#failures === failures) this.#stale = false;
        },
        (e) => this.#fail('resync', e),
      );
    });
  }

  /** Adds entities owned by another domain; loaded now and on each of its topics. */
  async addEntitySource(source: EntitySource): Promise<void> {
    this.#sources.push(source);
    for (const topic of source.topics) this.#store.events.on(topic, () => this.#reloadSource(source).catch((e) => this.#fail(`source ${source.name}`, e)));
    await this.#reloadSource(source);
  }

  /** Lets another domain add to every projected principal (e.g. entitlements); re-projects all. */
  async addPrincipalDecorator(decorator: PrincipalDecorator): Promise<void> {
    this.#decorators.push(decorator);
    await this.#refreshIdentities();
    await this.#refreshHuman();
  }

  /** Re-projects one principal now (e.g. after its grants changed). */
  async refreshPrincipal(type: string, id: string): Promise<void> {
    if (type === 'Human') await this.#refreshHuman(id);
    else await this.#refreshIdentities([id]);
  }

  // ---- decisions ------------------------------------------------------------------------------------

  decide(request: AuthorizationRequest, options: DecideOptions = {}): DecisionResult {
    // A projection that failed to follow a change (the store was away) may allow what it no longer
    // should: no decision until a resync has rebuilt everything.
    if (this.#stale) throw storeUnavailable();
    const entities = options.overrides && options.overrides.length > 0 ? this.#entities.overlay(options.overrides, 'merge') : this.#entities;
    const decision = authorize(this.#set, entities, request, { explain: options.explain ?? false });
    return {
      ...decision,
      policyDecision: decision.decision,
      decision: this.#mode === 'log-only' ? 'allow' : decision.decision,
      mode: this.#mode,
      policyVersion: this.#version,
    };
  }

  /** Decides and records the decision in the audit chain; answers only once the record is durable. */
  async decideAndLog(request: AuthorizationRequest, options: DecideOptions, log: DecisionLogEntry): Promise<DecisionResult> {
    const result = this.decide(request, options);
    await this.#audit.append(decisionRecord(request, result, log));
    return result;
  }

  // ---- policy versions ----------------------------------------------------------------------------------

  /**
   * Parses, compiles, validates against Mandate's schema, stores a new version and activates it (audited;
   * every replica reloads). A policy that does not validate (`Agnet`, `Action::"tools/cal"`,
   * `principal.stauts`) would compile and silently never match, so it is refused with POLICY_INVALID and
   * its errors, unless `force` (policies over entity types Mandate's schema does not know), which the
   * audit event records.
   */
  async apply(cedar: string, options: { mode?: PolicyMode | undefined; note?: string | undefined; links?: TemplateLink[] | undefined; force?: boolean | undefined }, actor: string): Promise<PolicyVersion> {
    // Throws POLICY_PARSE with line and column (or POLICY_LINK) before anything is written.
    const links = options.links ?? [];
    const compiled = compilePolicySet(cedar, { links });
    const errors = validateAgainstMandateSchema(cedar, links).filter((issue) => issue.severity === 'error');
    const forced = options.force === true;
    if (errors.length > 0 && !forced) {
      const first = errors[0]!;
      throw new MandateError('POLICY_INVALID', `the policies do not validate against Mandate's schema (${errors.length} error${errors.length === 1 ? '' : 's'}; first at ${first.line}:${first.column}: ${first.message}); fix them, or apply with force`, 400, { errors });
    }
    const mode = options.mode ?? 'enforce';
    const version = await this.#store.transaction(async (tx) => {
      const last = await tx.db.selectFrom('policy_versions').select((eb) => eb.fn.max('version').as('max')).executeTakeFirst();
      const next = Number(last?.max ?? 0) + 1;
      await tx.db.updateTable('policy_versions').set({ active: 0 }).where('active', '=', 1).execute();
      const createdAt = new Date().toISOString();
      await tx.db.insertInto('policy_versions').values({ version: next, cedar, links: JSON.stringify(links), mode, active: 1, note: options.note ?? null, created_by: actor, created_at: createdAt }).execute();
      await this.#audit.appendIn(tx, { actor, action: 'policy.apply', target: `policy-version:${next}`, outcome: 'success', details: { version: next, mode, policies: compiled.policies.length, templates: compiled.templates.size, links: links.length, sha256: sha256Hex(cedar), note: options.note ?? null, ...(forced && { forced: true, validationErrors: errors.length }) } });
      tx.publish(POLICY_ACTIVATED, { version: next });
      return { version: next, mode, active: true, note: options.note ?? null, createdBy: actor, createdAt, policies: compiled.policies.length };
    });
    this.#install(compiled, version.version, mode);
    return version;
  }

  /**
   * Restores a previous version (or changes nothing if it is active already). It is validated as `apply`
   * validates: a version applied with `force`, or stored before validation existed, is refused with
   * POLICY_INVALID unless this activation is forced too (audited), so re-activating cannot bypass it.
   */
  async activate(versionNumber: number, actor: string, options: { force?: boolean | undefined } = {}): Promise<PolicyVersion> {
    const row = await this.#store.db.selectFrom('policy_versions').selectAll().where('version', '=', versionNumber).executeTakeFirst();
    if (!row) throw new MandateError('POLICY_VERSION_NOT_FOUND', `policy version ${versionNumber} does not exist`, 404);
    const compiled = compileRow(row);
    const errors = validateAgainstMandateSchema(row.cedar, JSON.parse(row.links) as TemplateLink[]).filter((issue) => issue.severity === 'error');
    const forced = options.force === true;
    if (errors.length > 0 && !forced) {
      const first = errors[0]!;
      throw new MandateError('POLICY_INVALID', `policy version ${versionNumber} does not validate against Mandate's schema (${errors.length} error${errors.length === 1 ? '' : 's'}; first at ${first.line}:${first.column}: ${first.message}); activate it with force`, 400, { errors });
    }
    await this.#store.transaction(async (tx) => {
      await tx.db.updateTable('policy_versions').set({ active: 0 }).where('active', '=', 1).execute();
      await tx.db.updateTable('policy_versions').set({ active: 1 }).where('version', '=', versionNumber).execute();
      await this.#audit.appendIn(tx, { actor, action: 'policy.activate', target: `policy-version:${versionNumber}`, outcome: 'success', details: { version: versionNumber, previous: this.#version, ...(forced && { forced: true, validationErrors: errors.length }) } });
      tx.publish(POLICY_ACTIVATED, { version: versionNumber });
    });
    this.#install(compiled, versionNumber, row.mode);
    return { version: row.version, mode: row.mode, active: true, note: row.note, createdBy: row.created_by, createdAt: row.created_at, policies: compiled.policies.length };
  }

  async versions(): Promise<PolicyVersion[]> {
    const rows = await this.#store.db.selectFrom('policy_versions').selectAll().orderBy('version', 'desc').limit(200).execute();
    return rows.map((row) => ({ version: row.version, mode: row.mode, active: row.active === 1, note: row.note, createdBy: row.created_by, createdAt: row.created_at, policies: row.version === this.#version ? this.#set.policies.length : -1 }));
  }

  async source(versionNumber?: number): Promise<{ version: number; mode: PolicyMode; cedar: string; links: TemplateLink[] } | undefined> {
    let query = this.#store.db.selectFrom('policy_versions').selectAll();
    query = versionNumber === undefined ? query.where('active', '=', 1) : query.where('version', '=', versionNumber);
    const row = await query.executeTakeFirst();
    return row ? { version: row.version, mode: row.mode, cedar: row.cedar, links: JSON.parse(row.links) as TemplateLink[] } : undefined;
  }

  // ---- imported entities ----------------------------------------------------------------------------------

  /** Adds or replaces imported entities (Cedar entity JSON). All or nothing; audited. */
  async importEntities(entities: unknown[], actor: string, options: { replace?: boolean } = {}): Promise<{ imported: number }> {
    // Validates shapes, duplicates, cycles and depth before anything is written. The depth limit is
    // checked here, on writes, and never when stored entities are loaded (see MAX_ENTITY_HIERARCHY_DEPTH).
    const limits = { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH, maxAncestorEntries: MAX_ANCESTOR_ENTRIES };
    const parsed = createEntityStore(entities, limits);
    const rows = [...parsed].map((e) => ({ type: e.uid.type, id: e.uid.id }));
    const incoming = new Set(rows.map((r) => `${r.type}\u0000${r.id}`));
    // One import at a time in this process: each is checked against what the one before it left.
    const previous = this.#importing;
    let done: () => void = () => undefined;
    this.#importing = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      // The hierarchy must also be acyclic together with the registry's entities (Human → Group,
      // principals → Role), which an imported entity can reach and be reached from. It is built as the
      // reload after the import will build it, so a batch that would fail that reload is refused before
      // anything is written. Built outside the transaction: the projections read the store, and the
      // embedded store has one connection.
      const stored = options.replace ? [] : await this.#store.db.selectFrom('policy_entities').select(['type', 'id', 'json']).execute();
      const others = stored.filter((r) => !incoming.has(`${r.type}\u0000${r.id}`)).map((r) => JSON.parse(r.json) as EntityJson);
      await this.#buildEntities([...others, ...(entities as EntityJson[])]);
      // Its change event (delivered here, and awaited, when the transaction commits) rebuilds the entities.
      await this.#writeImport(entities, rows, incoming, actor, options);
    } finally {
      done();
    }
    return { imported: entities.length };
  }

  async #writeImport(entities: unknown[], rows: { type: string; id: string }[], incoming: Set<string>, actor: string, options: { replace?: boolean }): Promise<void> {
    const limits = { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH, maxAncestorEntries: MAX_ANCESTOR_ENTRIES };
    await this.#store.transaction(async (tx) => {
      if (this.#store.dialect === 'postgres') {
        // Another replica may have imported since the check before this transaction: check again, under
        // a lock every replica's import takes, against what is stored now. (The embedded store is one
        // process, whose imports already run one at a time; its single connection is held here.)
        await advisoryXactLock(tx.db, LOCK_ENTITY_IMPORTS);
        const now = await tx.db.selectFrom('policy_entities').select(['type', 'id', 'json']).execute();
        const others = options.replace ? [] : now.filter((r) => !incoming.has(`${r.type}\u0000${r.id}`)).map((r) => JSON.parse(r.json) as EntityJson);
        await this.#buildEntities([...others, ...(entities as EntityJson[])]);
      }
      // The hierarchy after this import must be acyclic as a whole, not only within the batch: an entity
      // naming an already-imported descendant as its parent was stored, then every reload (this replica,
      // the others, the next start) failed on the cycle and left the imported entities out (decisions
      // changed, every later import refused).
      if (!options.replace) {
        const stored = await tx.db.selectFrom('policy_entities').select(['type', 'id', 'json']).execute();
        const kept = stored.filter((r) => !incoming.has(`${r.type}\u0000${r.id}`)).map((r) => JSON.parse(r.json) as unknown);
        // So must its depth: a batch that hangs a chain under already-imported entities is as deep as both.
        // What is stored is loaded without the limit and only the batch and its descendants are measured,
        // so entities stored before the limit existed neither fail here nor block unrelated imports. The
        // registry adds a level or two around imported entities (Human → Group, principals → Role) and is
        // never measured: it cannot be refused.
        if (kept.length > 0) createEntityStore(kept).upsert(entities, limits);
      }
      if (options.replace) await tx.db.deleteFrom('policy_entities').execute();
      const now = new Date().toISOString();
      for (const [i, raw] of entities.entries()) {
        const uid = rows[i]!;
        await tx.db.deleteFrom('policy_entities').where('type', '=', uid.type).where('id', '=', uid.id).execute();
        await tx.db.insertInto('policy_entities').values({ type: uid.type, id: uid.id, json: JSON.stringify(raw), updated_at: now }).execute();
      }
      await this.#audit.appendIn(tx, { actor, action: 'policy.entities.import', outcome: 'success', details: { count: entities.length, replace: options.replace ?? false } });
      tx.publish(ENTITIES_IMPORTED, { count: entities.length });
    });
  }

  // ---- internals ----------------------------------------------------------------------------------

  #install(compiled: CompiledPolicySet, version: number, mode: PolicyMode): void {
    this.#set = compiled;
    this.#version = version;
    this.#mode = mode;
  }

  async #loadActivePolicy(): Promise<void> {
    const row = await this.#store.db.selectFrom('policy_versions').selectAll().where('active', '=', 1).executeTakeFirst();
    if (!row) {
      this.#install(compilePolicySet(''), 0, 'enforce');
      return;
    }
    try {
      this.#install(compileRow(row), row.version, row.mode);
    } catch (error) {
      // A stored version that no longer compiles must not leave the previous one in force: deny all.
      this.#install(compilePolicySet(''), row.version, 'enforce');
      // Logged, not thrown: denying everything is this version's state, not a reload to retry.
      this.#logger.error({ err: error }, `pdp: policy version ${row.version} does not compile; denying everything`);
    }
  }

  /**
   * Every entity the decision point sees, built afresh: imported ones first, then the registry's
   * projections and the other domains' sources, which win over imported entities with the same uid.
   * Throws (a cycle) without touching the live store.
   */
  async #buildEntities(imported: readonly EntityJson[]): Promise<{ entities: EntityStore; sourceUids: Map<string, Uid[]> }> {
    const entities = createEntityStore([]);
    entities.upsert(imported);
    entities.upsert(await projectGroups(this.#store));
    entities.upsert(await this.#decorate(await projectHumans(this.#store)));
    entities.upsert(await this.#decorate(await projectIdentities(this.#store)));
    const sourceUids = new Map<string, Uid[]>();
    for (const source of this.#sources) {
      const loaded = await source.load();
      entities.upsert(loaded);
      sourceUids.set(source.name, loaded.map((e) => plainUid(e.uid)));
    }
    return { entities, sourceUids };
  }

  /**
   * Rebuilds the live entities, all or nothing: on a failure the previous ones stay in force. One
   * rebuild runs at a time, and calls that arrive meanwhile share one more that starts after it: the
   * last store swapped in was read after the last request, never an older one finishing late.
   */
  #reloadAllEntities(): Promise<void> {
    if (!this.#rebuild) {
      this.#rebuild = this.#rebuildEntities().finally(() => (this.#rebuild = undefined));
      return this.#rebuild;
    }
    this.#rebuildAgain ??= this.#rebuild
      .catch(() => undefined)
      .then(() => {
        this.#rebuildAgain = undefined;
        return this.#reloadAllEntities();
      });
    return this.#rebuildAgain;
  }

  async #rebuildEntities(): Promise<void> {
    const imported = await this.#loadImported();
    const built = await this.#buildEntities(imported);
    this.#entities = built.entities;
    this.#sourceUids.clear();
    for (const [name, uids] of built.sourceUids) this.#sourceUids.set(name, uids);
    // Changes that arrived while the new store was being built were applied to the old one: project
    // principals and reload sources again, into the new one.
    await this.#refreshIdentities();
    await this.#refreshHuman();
    for (const source of this.#sources) await this.#reloadSource(source);
  }

  async #loadImported(): Promise<EntityJson[]> {
    const rows = await this.#store.db.selectFrom('policy_entities').select('json').execute();
    return rows.map((r) => JSON.parse(r.json) as EntityJson);
  }

  /**
   * After an import (here or on another replica): a full rebuild. Applied on top of the live store, an
   * imported entity could meet registry entities it forms a cycle with there, and fail half-way.
   */
  async #reloadImported(): Promise<void> {
    await this.#reloadAllEntities();
  }

  async #reloadSource(source: EntitySource): Promise<void> {
    const entities = await source.load();
    this.#entities.remove(this.#sourceUids.get(source.name) ?? []);
    this.#entities.upsert(entities);
    this.#sourceUids.set(source.name, entities.map((e) => plainUid(e.uid)));
  }

  async #refreshIdentities(ids?: string[]): Promise<void> {
    const projected = await this.#decorate(await projectIdentities(this.#store, ids));
    if (ids) {
      const found = new Set(projected.map((e) => plainUid(e.uid).id));
      this.#entities.remove(ids.filter((id) => !found.has(id)).flatMap((id) => [{ type: 'Agent', id }, { type: 'Workload', id }]));
    }
    this.#entities.upsert(projected);
  }

  async #refreshHuman(id?: string): Promise<void> {
    // Group names and memberships may have changed with the human: groups are few, reload them.
    this.#entities.upsert(await projectGroups(this.#store));
    this.#entities.upsert(await this.#decorate(await projectHumans(this.#store, id === undefined ? undefined : [id])));
  }

  async #decorate(entities: EntityJson[]): Promise<EntityJson[]> {
    if (this.#decorators.length === 0) return entities;
    return entities.map((entity) => this.#decorators.reduce((e, decorate) => decorate(e), entity));
  }

  /** Logs a failed reload, marks the projection stale and rethrows, for the change-event bus to retry (see `init`). */
  #fail(what: string, error: unknown): never {
    this.#stale = true;
    this.#failures++;
    this.#logger.error({ err: error }, `pdp: ${what} failed; deciding nothing until a resync succeeds`);
    throw error;
  }
}

type Uid = { type: string; id: string };

function compileRow(row: { cedar: string; links: string }): CompiledPolicySet {
  return compilePolicySet(row.cedar, { links: JSON.parse(row.links) as TemplateLink[] });
}

function plainUid(uid: EntityJson['uid']): Uid {
  return '__entity' in uid ? uid.__entity : uid;
}

function uidText(u: AuthorizationRequest['principal']): string {
  const { type, id } = u as { type: string; id: string };
  return `${type}::${JSON.stringify(id)}`;
}

/** The decision's audit record: enough to explain it, and to replay it against a draft policy set. */
export function decisionRecord(request: AuthorizationRequest, result: DecisionResult, log: DecisionLogEntry): Parameters<AuditLog['append']>[0] {
  const context = request.context ?? {};
  const contextJson = canonicalJson(context);
  return {
    actor: log.actor,
    action: 'decision',
    target: uidText(request.resource),
    outcome: result.decision,
    details: {
      source: log.source,
      principal: uidText(request.principal),
      action: uidText(request.action),
      resource: uidText(request.resource),
      request: {
        principal: request.principal,
        action: request.action,
        resource: request.resource,
        ...(contextJson.length <= MAX_LOGGED_CONTEXT ? { context } : { contextSha256: sha256Hex(contextJson) }),
      },
      policyDecision: result.policyDecision,
      reasons: result.reasons,
      errors: result.errors,
      mode: result.mode,
      policyVersion: result.policyVersion,
    },
  };
}
