/**
 * The entity store. Each entity's transitive ancestor set is computed once when it is loaded (and
 * recomputed for it and its descendants when it changes), so `in` is a Set lookup at decision time.
 * Request-scoped overrides (e.g. AuthZEN `subject.properties`) go through an overlay view that never
 * mutates the store.
 */
import { MandateError } from '../core/errors.ts';
import { parseJsonExact } from './json.ts';
import { recordFromJson, uidFromJson } from './json-value.ts';
import type { EntityUidJson } from './json-value.ts';
import { EntityUid } from './values.ts';
import type { CedarRecord, Value } from './values.ts';

export interface EntityData {
  readonly uid: EntityUid;
  readonly attrs: ReadonlyMap<string, Value>;
  /** `null` when the entity has no tags (the common case). */
  readonly tags: ReadonlyMap<string, Value> | null;
  readonly parents: readonly EntityUid[];
  /** Keys (`EntityUid.key`) of every transitive ancestor, not including the entity itself. */
  readonly ancestors: ReadonlySet<string>;
}

/** What the evaluator needs: entity by key. */
export interface EntityLookup {
  get(key: string): EntityData | undefined;
}

/** cedar-wasm's entity JSON. */
export interface EntityJson {
  uid: EntityUidJson;
  attrs: Record<string, unknown>;
  parents: EntityUidJson[];
  tags?: Record<string, unknown>;
}

/** An override for one request: missing fields keep the stored entity's (in `merge` mode). */
export interface EntityOverride {
  uid: EntityUidJson;
  attrs?: Record<string, unknown>;
  parents?: EntityUidJson[];
  tags?: Record<string, unknown>;
}

const EMPTY: ReadonlySet<string> = new Set();

interface Parsed {
  uid: EntityUid;
  attrs: ReadonlyMap<string, Value> | undefined;
  parents: EntityUid[] | undefined;
  tags: ReadonlyMap<string, Value> | null | undefined;
}

function parseEntity(raw: unknown, where: string, partial: boolean): Parsed {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new MandateError('POLICY_ENTITIES_INVALID', `${where}: expected an entity object`, 400);
  }
  const o = raw as Record<string, unknown>;
  if (!('uid' in o)) throw new MandateError('POLICY_ENTITIES_INVALID', `${where}: missing field \`uid\``, 400);
  try {
    const uid = uidFromJson(o.uid, `${where}.uid`);
    const at = `entity ${uid.key}`;
    if (!partial && !('attrs' in o)) throw new MandateError('POLICY_ENTITIES_INVALID', `${at}: missing field \`attrs\``, 400);
    if (!partial && !('parents' in o)) throw new MandateError('POLICY_ENTITIES_INVALID', `${at}: missing field \`parents\``, 400);
    const attrs = o.attrs === undefined ? undefined : recordFromJson(o.attrs, `${at} attrs`).map;
    let parents: EntityUid[] | undefined;
    if (o.parents !== undefined) {
      if (!Array.isArray(o.parents)) throw new MandateError('POLICY_ENTITIES_INVALID', `${at}: \`parents\` must be an array`, 400);
      parents = o.parents.map((p, i) => uidFromJson(p, `${at} parents[${i}]`));
    }
    let tags: ReadonlyMap<string, Value> | null | undefined;
    if (o.tags !== undefined) {
      const t = recordFromJson(o.tags, `${at} tags`).map;
      tags = t.size === 0 ? null : t;
    }
    return { uid, attrs, parents, tags };
  } catch (e) {
    if (e instanceof MandateError && e.code !== 'POLICY_ENTITIES_INVALID') {
      throw new MandateError('POLICY_ENTITIES_INVALID', e.message, 400, e.details);
    }
    throw e;
  }
}

/** Ancestors by walking parents; `parentsOf` returns undefined for unknown entities (no parents). */
function walkAncestors(start: readonly EntityUid[], parentsOf: (key: string) => readonly EntityUid[] | undefined): Set<string> {
  const out = new Set<string>();
  const stack = [...start];
  while (stack.length > 0) {
    const p = stack.pop() as EntityUid;
    if (out.has(p.key)) continue;
    out.add(p.key);
    const pp = parentsOf(p.key);
    if (pp !== undefined) for (const q of pp) if (!out.has(q.key)) stack.push(q);
  }
  return out;
}

function cycleError(key: string): MandateError {
  return new MandateError('POLICY_ENTITY_CYCLE', `entity hierarchy has a cycle containing ${key}`, 400, { entity: key });
}

/**
 * The deepest entity hierarchy a write may create, counted in entities along the longest parent chain
 * (an entity without parents is depth 1; a parent that is not an entity counts as one level).
 *
 * Why: each entity's transitive ancestor set is materialised so that `in` is a Set lookup at decision
 * time, which makes a chain of n entities cost n²/2 set entries — one import of 9,000 entities in a
 * single chain held the event loop for 20 s and took over a gigabyte. Real hierarchies (org charts,
 * folder trees, role inheritance) are a dozen or two levels deep; 64 is far above them and keeps a chain's
 * ancestor sets at most 63 entries each. Checked when entities are written (imports), never when stored
 * entities are loaded: a store written before the limit existed still loads instead of leaving the
 * imported entities out of every decision.
 */
export const MAX_ENTITY_HIERARCHY_DEPTH = 64;

/**
 * The most ancestor-set entries one write may make the store compute (the sum, over the entities it
 * adds or re-parents, of their transitive ancestors). Depth alone does not bound the work: a shallow
 * "funnel" (n roots, one entity under all of them, n entities under that) gives each of the last n
 * entities n ancestors — 10,001 entities took 4 s and 850 MB. Two million entries (about 100 MB) is far
 * above real org charts and folder trees (100,000 entities ten levels deep is one million).
 */
export const MAX_ANCESTOR_ENTRIES = 2_000_000;

/**
 * Depth (see `MAX_ENTITY_HIERARCHY_DEPTH`) of each of `keys` and of every ancestor reached from them:
 * 1 + the deepest parent's, 1 for an entity `parentsOf` gives no parents. An iterative depth-first walk
 * that memoises each entity's depth, so it visits every entity and parent edge once — linear whatever the
 * shape, and no recursion for the stack to overflow on. Throws `POLICY_ENTITY_CYCLE` on a cycle (its depth
 * would be infinite).
 */
export function hierarchyDepths(keys: Iterable<string>, parentsOf: (key: string) => readonly { readonly key: string }[] | undefined): Map<string, number> {
  const depth = new Map<string, number>();
  const onPath = new Set<string>();
  interface Frame { key: string; parents: readonly { readonly key: string }[]; next: number; deepest: number }
  for (const start of keys) {
    if (depth.has(start)) continue;
    const stack: Frame[] = [{ key: start, parents: parentsOf(start) ?? [], next: 0, deepest: 0 }];
    onPath.add(start);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as Frame;
      if (top.next < top.parents.length) {
        const p = (top.parents[top.next++] as { key: string }).key;
        const known = depth.get(p);
        if (known !== undefined) {
          if (known > top.deepest) top.deepest = known;
        } else {
          if (onPath.has(p)) throw cycleError(p);
          onPath.add(p);
          stack.push({ key: p, parents: parentsOf(p) ?? [], next: 0, deepest: 0 });
        }
        continue;
      }
      stack.pop();
      onPath.delete(top.key);
      const d = top.deepest + 1;
      depth.set(top.key, d);
      const below = stack[stack.length - 1];
      if (below !== undefined && d > below.deepest) below.deepest = d;
    }
  }
  return depth;
}

/** Throws `ENTITY_HIERARCHY_TOO_DEEP` (400), naming the deepest entity, when a chain is longer than `limit`. */
function checkHierarchyDepth(keys: Iterable<string>, parentsOf: (key: string) => readonly EntityUid[] | undefined, limit: number): void {
  let deepest: string | undefined;
  let max = 0;
  for (const [key, d] of hierarchyDepths(keys, parentsOf)) if (d > max) {
    max = d;
    deepest = key;
  }
  if (deepest !== undefined && max > limit) {
    throw new MandateError('ENTITY_HIERARCHY_TOO_DEEP', `entity ${deepest} is ${max} levels deep in the entity hierarchy (at most ${limit})`, 400, { entity: deepest, depth: max, limit });
  }
}

export interface UpsertOptions {
  /**
   * Refuse (before anything changes) when the hierarchy after this change would be deeper than this:
   * pass `MAX_ENTITY_HIERARCHY_DEPTH` when writing what a caller sent; leave it out when loading.
   */
  maxDepth?: number | undefined;
  /** Likewise for the ancestor-set entries computed (`MAX_ANCESTOR_ENTRIES`); checked as they are built. */
  maxAncestorEntries?: number | undefined;
}

export class EntityStore implements EntityLookup {
  readonly #entities = new Map<string, EntityData>();
  /** parent key → keys of entities listing it as a parent, to find descendants on change. */
  readonly #children = new Map<string, Set<string>>();

  get size(): number {
    return this.#entities.size;
  }

  get(key: string): EntityData | undefined {
    return this.#entities.get(key);
  }

  getUid(type: string, id: string): EntityData | undefined {
    return this.#entities.get(new EntityUid(type, id).key);
  }

  *[Symbol.iterator](): IterableIterator<EntityData> {
    yield* this.#entities.values();
  }

  /**
   * Adds or replaces entities (all or nothing). A duplicate uid within one call is an error, as in
   * cedar-wasm; ancestors of the changed entities and of all their descendants are recomputed.
   */
  upsert(entities: readonly unknown[], options: UpsertOptions = {}): void {
    const parsed = new Map<string, Parsed>();
    entities.forEach((raw, i) => {
      const p = parseEntity(raw, `entities[${i}]`, false);
      if (parsed.has(p.uid.key)) {
        throw new MandateError('POLICY_ENTITIES_INVALID', `duplicate entity entry \`${p.uid.key}\``, 400);
      }
      parsed.set(p.uid.key, p);
    });
    this.#apply(parsed, [], options.maxDepth, options.maxAncestorEntries);
  }

  /** Removes entities by uid; unknown uids are ignored. */
  remove(uids: readonly EntityUidJson[]): void {
    this.#apply(new Map(), uids.map((u, i) => uidFromJson(u, `uids[${i}]`).key), undefined, undefined);
  }

  #apply(changed: Map<string, Parsed>, removed: string[], maxDepth: number | undefined, maxAncestorEntries: number | undefined): void {
    const affected = new Set<string>([...changed.keys(), ...removed]);
    // Descendants (through the current hierarchy) whose ancestor sets may change.
    const queue = [...affected];
    while (queue.length > 0) {
      const k = queue.pop() as string;
      for (const c of this.#children.get(k) ?? []) if (!affected.has(c)) {
        affected.add(c);
        queue.push(c);
      }
    }
    const removedSet = new Set(removed);
    const parentsOf = (key: string): readonly EntityUid[] | undefined => {
      const c = changed.get(key);
      if (c !== undefined) return c.parents;
      if (removedSet.has(key)) return undefined;
      return this.#entities.get(key)?.parents;
    };
    // Before any ancestor set is built: that is the cost the limit bounds (linear check).
    if (maxDepth !== undefined) checkHierarchyDepth(affected, parentsOf, maxDepth);
    const next = new Map<string, EntityData>();
    let entries = 0;
    for (const key of affected) {
      if (removedSet.has(key) && !changed.has(key)) continue;
      const c = changed.get(key);
      const old = this.#entities.get(key);
      const uid = c?.uid ?? old?.uid;
      if (uid === undefined) continue;
      const parents = c?.parents ?? old?.parents ?? [];
      const ancestors = parents.length === 0 ? EMPTY : walkAncestors(parents, parentsOf);
      if (ancestors.has(key)) throw cycleError(key);
      entries += ancestors.size;
      // Counted as the sets are built, so a refused write stops after at most the budget's worth of work.
      if (maxAncestorEntries !== undefined && entries > maxAncestorEntries) {
        throw new MandateError('ENTITY_HIERARCHY_TOO_LARGE', `this change would give its entities more than ${maxAncestorEntries} ancestor entries in all (at ${key})`, 400, { entity: key, limit: maxAncestorEntries });
      }
      next.set(key, {
        uid,
        attrs: c?.attrs ?? old?.attrs ?? new Map(),
        tags: c === undefined ? (old?.tags ?? null) : (c.tags ?? null),
        parents,
        ancestors,
      });
    }
    // Commit only after every check passed.
    for (const key of affected) {
      const old = this.#entities.get(key);
      if (old !== undefined) for (const p of old.parents) this.#children.get(p.key)?.delete(key);
      const n = next.get(key);
      if (n === undefined) {
        this.#entities.delete(key);
        continue;
      }
      this.#entities.set(key, n);
      for (const p of n.parents) {
        let s = this.#children.get(p.key);
        if (s === undefined) this.#children.set(p.key, (s = new Set()));
        s.add(key);
      }
    }
  }

  /**
   * A read-only view with request-scoped overrides. `replace` (default) substitutes whole entities;
   * `merge` keeps the stored entity's attributes, tags and parents unless the override gives them.
   */
  overlay(overrides: readonly EntityOverride[], mode: 'replace' | 'merge' = 'replace'): EntityLookup {
    return new OverlayView(this, overrides, mode);
  }
}

class OverlayView implements EntityLookup {
  readonly #base: EntityStore;
  readonly #over = new Map<string, EntityData>();
  /** Keys of entities whose parents the overlay changed. */
  readonly #reparented = new Set<string>();
  readonly #recomputed = new Map<string, EntityData>();

  constructor(base: EntityStore, overrides: readonly EntityOverride[], mode: 'replace' | 'merge') {
    this.#base = base;
    const parsed = new Map<string, Parsed>();
    overrides.forEach((raw, i) => {
      const p = parseEntity(raw, `overrides[${i}]`, true);
      parsed.set(p.uid.key, p);
    });
    const parentsById = new Map<string, readonly EntityUid[]>();
    for (const [key, p] of parsed) {
      const old = mode === 'merge' ? base.get(key) : undefined;
      const parents = p.parents ?? old?.parents ?? [];
      parentsById.set(key, parents);
      const was = base.get(key)?.parents ?? [];
      if (was.length !== parents.length || was.some((u, i) => u.key !== parents[i]?.key)) this.#reparented.add(key);
    }
    const parentsOf = (key: string): readonly EntityUid[] | undefined => parentsById.get(key) ?? base.get(key)?.parents;
    for (const [key, p] of parsed) {
      const old = mode === 'merge' ? base.get(key) : undefined;
      const parents = parentsById.get(key) ?? [];
      const ancestors = walkAncestors(parents, parentsOf);
      if (ancestors.has(key)) throw cycleError(key);
      let attrs = p.attrs ?? old?.attrs ?? new Map<string, Value>();
      if (old !== undefined && p.attrs !== undefined) attrs = new Map([...old.attrs, ...p.attrs]);
      let tags = p.tags === undefined ? (old?.tags ?? null) : p.tags;
      if (old?.tags && p.tags) tags = new Map([...old.tags, ...p.tags]);
      this.#over.set(key, { uid: p.uid, attrs, tags, parents, ancestors });
    }
    this.#parentsOf = parentsOf;
  }

  readonly #parentsOf: (key: string) => readonly EntityUid[] | undefined;

  get(key: string): EntityData | undefined {
    const o = this.#over.get(key);
    if (o !== undefined) return o;
    const b = this.#base.get(key);
    if (b === undefined || this.#reparented.size === 0) return b;
    let hit = false;
    for (const r of this.#reparented) if (b.ancestors.has(r)) hit = true;
    if (!hit) return b;
    let r = this.#recomputed.get(key);
    if (r === undefined) {
      r = { ...b, ancestors: walkAncestors(b.parents, this.#parentsOf) };
      this.#recomputed.set(key, r);
    }
    return r;
  }
}

/** Builds a store from cedar-wasm entity JSON (an array, or its JSON text). */
export function createEntityStore(entities: readonly unknown[] | string = [], options: UpsertOptions = {}): EntityStore {
  const store = new EntityStore();
  let list: unknown = entities;
  if (typeof entities === 'string') {
    try {
      list = parseJsonExact(entities);
    } catch (e) {
      throw new MandateError('POLICY_ENTITIES_INVALID', `entities are not valid JSON: ${(e as Error).message}`, 400);
    }
  }
  if (!Array.isArray(list)) throw new MandateError('POLICY_ENTITIES_INVALID', 'entities must be a JSON array', 400);
  store.upsert(list, options);
  return store;
}

/** Parses a context record (cedar-wasm JSON value form). */
export function contextFromJson(context: unknown): CedarRecord {
  return recordFromJson(context ?? {}, 'context');
}
