/**
 * The entity hierarchy depth limit (docs/threat-model.md, Review 2: a long chain made imports quadratic):
 * the depth computation against a brute-force reference, its cost on hostile shapes, and `upsert`'s
 * all-or-nothing refusal.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MandateError } from '../core/errors.ts';
import { createEntityStore, hierarchyDepths, MAX_ENTITY_HIERARCHY_DEPTH } from './entities.ts';

type Graph = Map<string, { key: string }[]>;

/** Longest chain by plain recursion over every path (exponential; small graphs only). */
function naiveDepth(graph: Graph, key: string, path: Set<string> = new Set()): number {
  if (path.has(key)) return Infinity;
  const parents = graph.get(key) ?? [];
  let deepest = 0;
  for (const p of parents) deepest = Math.max(deepest, naiveDepth(graph, p.key, new Set([...path, key])));
  return deepest + 1;
}

/** n nodes `k0…`; each edge list may name any node (cycles possible) or a key with no entry (`x…`). */
const graphs = fc.integer({ min: 1, max: 9 }).chain((n) =>
  fc.array(fc.array(fc.oneof(fc.integer({ min: 0, max: n - 1 }).map((i) => `k${i}`), fc.constantFrom('x0', 'x1')), { maxLength: 3 }), { minLength: n, maxLength: n }).map((lists) => {
    const g: Graph = new Map();
    lists.forEach((parents, i) => g.set(`k${i}`, parents.map((key) => ({ key }))));
    return g;
  }),
);

const chain = (type: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ uid: { type, id: `c${i}` }, attrs: {}, parents: i + 1 < n ? [{ type, id: `c${i + 1}` }] : [] }));

describe('hierarchyDepths', () => {
  it('equals the longest parent chain by brute force, or reports a cycle exactly when one is reachable', () => {
    fc.assert(
      fc.property(graphs, (g) => {
        const expected = new Map([...g.keys()].map((k) => [k, naiveDepth(g, k)]));
        const cyclic = [...expected.values()].some((d) => d === Infinity);
        let depths: Map<string, number>;
        try {
          depths = hierarchyDepths(g.keys(), (k) => g.get(k));
        } catch (e) {
          expect(cyclic).toBe(true);
          expect((e as MandateError).code).toBe('POLICY_ENTITY_CYCLE');
          return;
        }
        expect(cyclic).toBe(false);
        for (const [k, d] of expected) expect(depths.get(k)).toBe(d);
        // Keys without an entry (parents that are not entities) are one level.
        for (const [k, d] of depths) if (!g.has(k)) expect(d).toBe(1);
      }),
      { numRuns: 2000 },
    );
  });

  // No timing assertion (tests never depend on timing): a path-walking or recursive version overflows the
  // stack on the chain or never finishes on the ladder, so the test's own timeout is the failure.
  it('is linear: a 200,000-entity chain and a ladder with 2^1000 paths finish, without recursion', () => {
    const n = 200_000;
    const depths = hierarchyDepths(['k0'], (k) => {
      const i = Number(k.slice(1));
      return i + 1 < n ? [{ key: `k${i + 1}` }] : [];
    });
    expect(depths.get('k0')).toBe(n);
    // Each rung has two parents, both with the next rung's two as parents: the number of paths doubles per
    // rung, so anything that walks paths instead of memoising entities never finishes.
    const rungs = 1000;
    const ladder = hierarchyDepths(['a0'], (k) => {
      const i = Number(k.slice(1));
      return i + 1 < rungs ? [{ key: `a${i + 1}` }, { key: `b${i + 1}` }] : [];
    });
    expect(ladder.get('a0')).toBe(rungs);
  });
});

describe('EntityStore depth limit', () => {
  it('refuses a chain one deeper than maxDepth before changing anything, naming the deepest entity', () => {
    const store = createEntityStore([{ uid: { type: 'Keep', id: 'k' }, attrs: {}, parents: [] }]);
    let error: unknown;
    try {
      store.upsert(chain('T', MAX_ENTITY_HIERARCHY_DEPTH + 1), { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MandateError);
    expect(error).toMatchObject({ code: 'ENTITY_HIERARCHY_TOO_DEEP', status: 400, details: { entity: 'T::"c0"', depth: MAX_ENTITY_HIERARCHY_DEPTH + 1, limit: MAX_ENTITY_HIERARCHY_DEPTH } });
    expect(store.size).toBe(1);
    // Exactly at the limit is accepted.
    store.upsert(chain('T', MAX_ENTITY_HIERARCHY_DEPTH), { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH });
    expect(store.getUid('T', 'c0')?.ancestors.size).toBe(MAX_ENTITY_HIERARCHY_DEPTH - 1);
  });

  it('measures the merged hierarchy: a batch hung under stored entities counts their depth', () => {
    const store = createEntityStore(chain('T', MAX_ENTITY_HIERARCHY_DEPTH));
    const leaf = [{ uid: { type: 'L', id: 'leaf' }, attrs: {}, parents: [{ type: 'T', id: 'c0' }] }];
    expect(() => store.upsert(leaf, { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH })).toThrow(expect.objectContaining({ code: 'ENTITY_HIERARCHY_TOO_DEEP', details: expect.objectContaining({ entity: 'L::"leaf"' }) }));
    // Re-parenting the top under a new root deepens every entity below it.
    const root = [{ uid: { type: 'T', id: `c${MAX_ENTITY_HIERARCHY_DEPTH - 1}` }, attrs: {}, parents: [{ type: 'R', id: 'root' }] }];
    expect(() => store.upsert(root, { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH })).toThrow(expect.objectContaining({ code: 'ENTITY_HIERARCHY_TOO_DEEP', details: expect.objectContaining({ entity: 'T::"c0"' }) }));
    expect(store.get('L::"leaf"')).toBeUndefined();
    expect(store.getUid('T', `c${MAX_ENTITY_HIERARCHY_DEPTH - 1}`)?.parents).toEqual([]);
  });

  it('never refuses without maxDepth (loading what is stored) and still reports cycles first-class', () => {
    const store = createEntityStore(chain('T', MAX_ENTITY_HIERARCHY_DEPTH * 2));
    expect(store.getUid('T', 'c0')?.ancestors.size).toBe(MAX_ENTITY_HIERARCHY_DEPTH * 2 - 1);
    const cyclic = [
      { uid: { type: 'C', id: 'a' }, attrs: {}, parents: [{ type: 'C', id: 'b' }] },
      { uid: { type: 'C', id: 'b' }, attrs: {}, parents: [{ type: 'C', id: 'a' }] },
    ];
    expect(() => createEntityStore(cyclic, { maxDepth: MAX_ENTITY_HIERARCHY_DEPTH })).toThrow(expect.objectContaining({ code: 'POLICY_ENTITY_CYCLE' }));
  });
});
