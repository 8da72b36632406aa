/**
 * Differential property tests: random policies, entities and requests decided by our engine and by
 * cedar-wasm's `isAuthorized` (the oracle) must agree on the decision, the reasons and which policies
 * errored. Generators cover every construct the engine implements, well-typed most of the time and
 * ill-typed often enough to exercise error semantics.
 */
import { isAuthorized } from '@cedar-policy/cedar-wasm/nodejs';
import type { AuthorizationCall } from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize, compilePolicySet, createEntityStore } from './index.ts';

const ID = fc.constantFrom('a', 'b', 'c');
const uid = (type: string) => ID.map((id) => ({ type, id }));
const ENTITY_TYPES = ['User', 'Group', 'Doc'] as const;
const anyUid = fc.oneof(uid('User'), uid('Group'), uid('Doc'));
const lit = (u: { type: string; id: string }): string => `${u.type}::"${u.id}"`;

// ---- expressions (Cedar text) ----
const str = (s: string): string => JSON.stringify(s);
const STRINGS = ['', 'a', 'b', 'ab', 'a*b', 'héllo', 'A'];
const LONG_LITS = ['0', '1', '-1', '7', '42', '9223372036854775807', '-9223372036854775808', '4611686018427387904', '9007199254740993'];
const IPS = ['10.0.0.1', '10.0.0.0/8', '192.168.1.0/24', '127.0.0.1', '::1', 'ff02::1', '224.1.2.3', '::', '1.2.3', '10.0.0.1/40', '2001:db8::/32'];
const DECS = ['1.0', '-1.5', '0.0001', '922337203685477.5807', '1.23456', '2.5'];
const DATES = ['2024-01-01', '2024-01-01T12:30:00Z', '2024-01-01T12:30:00.500+0130', '1969-12-31T23:59:59Z', '2024-02-30', '2024-13-01'];
const DURS = ['1d', '2h30m', '-90m', '1500ms', '0ms', '1d2h3m4s5ms', '9223372036854775807ms', '1x'];
const ATTRS = ['n', 's', 'm', 'set', 'rec', 'ip', 'flag'];

const leafLong = fc.oneof(
  fc.constantFrom(...LONG_LITS),
  fc.constantFrom('principal.n', 'resource.n', 'context.n', 'principal.rec.k'),
);
const leafString = fc.oneof(fc.constantFrom(...STRINGS).map(str), fc.constantFrom('principal.s', 'context.s', 'resource.s'));
const leafEntity = fc.oneof(anyUid.map(lit), fc.constantFrom('principal', 'resource', 'action', 'principal.m', 'Action::"view"'));

const { bool } = fc.letrec<{ bool: string; long: string; any: string; set: string; ext: string }>((tie) => ({
  long: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafLong,
    fc.tuple(tie('long'), fc.constantFrom('+', '-', '*'), tie('long')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('long').map((a) => `(-${a})`),
    fc.tuple(tie('bool'), tie('long'), tie('long')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
    fc.tuple(fc.constantFrom(...DURS), fc.constantFrom('toMilliseconds', 'toSeconds', 'toMinutes', 'toHours', 'toDays')).map(([d, f]) => `duration(${str(d)}).${f}()`),
    fc.constantFrom('principal.getTag("t")', 'resource.getTag("n")'),
  ),
  set: fc.oneof(
    { depthSize: 'small' },
    fc.array(tie('any'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    fc.array(leafEntity, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    fc.constantFrom('principal.set', 'context.set', 'resource.set'),
  ),
  ext: fc.oneof(
    fc.constantFrom(...IPS).map((s) => `ip(${str(s)})`),
    fc.constantFrom(...DECS).map((s) => `decimal(${str(s)})`),
    fc.constantFrom(...DATES).map((s) => `datetime(${str(s)})`),
    fc.constantFrom(...DURS).map((s) => `duration(${str(s)})`),
    fc.tuple(fc.constantFrom(...DATES), fc.constantFrom(...DURS)).map(([a, d]) => `datetime(${str(a)}).offset(duration(${str(d)}))`),
    fc.tuple(fc.constantFrom(...DATES), fc.constantFrom(...DATES)).map(([a, b]) => `datetime(${str(a)}).durationSince(datetime(${str(b)}))`),
    fc.tuple(fc.constantFrom(...DATES), fc.constantFrom('toDate', 'toTime')).map(([a, f]) => `datetime(${str(a)}).${f}()`),
    fc.constantFrom('principal.ip', 'context.ip'),
  ),
  any: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('bool'),
    tie('long'),
    leafString,
    leafEntity,
    tie('set'),
    tie('ext'),
    fc.tuple(tie('any'), tie('any')).map(([a, b]) => `{k: ${a}, "a b": ${b}}`),
    fc.tuple(leafEntity, fc.constantFrom(...ATTRS)).map(([e, a]) => `${e}.${a}`),
    fc.constantFrom('context', 'context.rec', 'principal.rec'),
  ),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('true', 'false', 'principal.flag', 'context.flag'),
    fc.tuple(tie('any'), fc.constantFrom('==', '!='), tie('any')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('long'), fc.constantFrom('<', '<=', '>', '>='), tie('long')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('ext'), fc.constantFrom('<', '<=', '>', '>=', '=='), tie('ext')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('bool'), fc.constantFrom('&&', '||'), tie('any')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    fc.tuple(tie('any'), fc.constantFrom('&&', '||'), tie('bool')).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie('bool').map((a) => `(!${a})`),
    fc.tuple(leafEntity, fc.oneof(leafEntity, tie('set'))).map(([a, b]) => `(${a} in ${b})`),
    fc.tuple(leafString, fc.constantFrom('*', 'a*', '*b', 'a\\*b', '', '*é*', 'a**b', 'ab')).map(([s, p]) => `(${s} like "${p}")`),
    fc.tuple(fc.oneof(leafEntity, tie('any')), fc.constantFrom(...ENTITY_TYPES)).map(([e, t]) => `(${e} is ${t})`),
    fc.tuple(leafEntity, fc.constantFrom(...ENTITY_TYPES), leafEntity).map(([e, t, g]) => `(${e} is ${t} in ${g})`),
    fc.tuple(fc.oneof(leafEntity, fc.constantFrom('context', 'context.rec', 'principal.rec')), fc.constantFrom(...ATTRS, 'k', 'rec.k', 'x.y')).map(([e, a]) => `(${e} has ${a})`),
    fc.tuple(tie('bool'), tie('bool'), tie('any')).map(([c, a, b]) => `(if ${c} then ${a} else ${b})`),
    fc.tuple(tie('set'), fc.constantFrom('contains', 'containsAll', 'containsAny'), tie('any')).map(([s, f, x]) => `${s}.${f}(${x})`),
    tie('set').map((s) => `${s}.isEmpty()`),
    fc.tuple(leafEntity, fc.constantFrom('"t"', '"n"', '"x"', 'principal.s')).map(([e, t]) => `${e}.hasTag(${t})`),
    fc.tuple(tie('ext'), fc.constantFrom('isIpv4', 'isIpv6', 'isLoopback', 'isMulticast')).map(([e, f]) => `${e}.${f}()`),
    fc.tuple(tie('ext'), tie('ext')).map(([a, b]) => `${a}.isInRange(${b})`),
    fc.tuple(tie('ext'), fc.constantFrom('lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual'), tie('ext')).map(([a, f, b]) => `${a}.${f}(${b})`),
  ),
}));

// ---- policies ----
const principalScope = fc.oneof(
  { arbitrary: fc.constant('principal'), weight: 4 },
  uid('User').map((u) => `principal == ${lit(u)}`),
  fc.oneof(uid('Group'), uid('User')).map((u) => `principal in ${lit(u)}`),
  fc.constantFrom(...ENTITY_TYPES).map((t) => `principal is ${t}`),
  fc.tuple(fc.constantFrom(...ENTITY_TYPES), uid('Group')).map(([t, g]) => `principal is ${t} in ${lit(g)}`),
);
const resourceScope = principalScope.map((s) => s.replaceAll('principal', 'resource'));
const ACTIONS = ['view', 'edit', 'read', 'all'];
const actionScope = fc.oneof(
  { arbitrary: fc.constant('action'), weight: 3 },
  fc.constantFrom(...ACTIONS).map((a) => `action == Action::"${a}"`),
  fc.constantFrom(...ACTIONS).map((a) => `action in Action::"${a}"`),
  fc.subarray(ACTIONS, { minLength: 1 }).map((as) => `action in [${as.map((a) => `Action::"${a}"`).join(', ')}]`),
);
const policy = fc
  .tuple(fc.constantFrom('permit', 'forbid'), principalScope, actionScope, resourceScope, fc.array(fc.tuple(fc.constantFrom('when', 'unless'), bool), { maxLength: 2 }))
  .map(([eff, p, a, r, conds]) => `${eff}(${p}, ${a}, ${r})${conds.map(([k, b]) => ` ${k} { ${b} }`).join('')};`);

// ---- entities and requests (cedar-wasm JSON) ----
const smallLong = fc.integer({ min: -5, max: 5 });
const jsonValue = fc.oneof(
  smallLong,
  fc.constantFrom(...STRINGS),
  fc.boolean(),
  anyUid.map((u) => ({ __entity: u })),
  fc.constantFrom(...IPS.slice(0, 7)).map((s) => ({ __extn: { fn: 'ip', arg: s } })),
);
const attrs = fc.record(
  {
    n: fc.oneof(smallLong, fc.constant(9007199254740991), fc.constantFrom('x')),
    s: fc.constantFrom(...STRINGS),
    m: anyUid.map((u) => ({ __entity: u })),
    set: fc.array(fc.oneof(smallLong, anyUid.map((u) => ({ __entity: u }))), { maxLength: 3 }),
    rec: fc.record({ k: smallLong }, { requiredKeys: [] }),
    ip: fc.constantFrom(...IPS.slice(0, 7)).map((s) => ({ __extn: { fn: 'ip', arg: s } })),
    flag: fc.boolean(),
  },
  { requiredKeys: [] },
);
const ALL_UIDS = [...ENTITY_TYPES.flatMap((type) => ['a', 'b', 'c'].map((id) => ({ type, id }))), ...ACTIONS.map((id) => ({ type: 'Action', id }))];
const entitiesArb = fc
  .tuple(
    fc.array(fc.boolean(), { minLength: ALL_UIDS.length, maxLength: ALL_UIDS.length }),
    fc.array(attrs, { minLength: ALL_UIDS.length, maxLength: ALL_UIDS.length }),
    fc.array(fc.array(fc.nat({ max: ALL_UIDS.length - 1 }), { maxLength: 2 }), { minLength: ALL_UIDS.length, maxLength: ALL_UIDS.length }),
    fc.array(fc.option(fc.record({ t: jsonValue, n: smallLong }, { requiredKeys: [] }), { nil: undefined }), { minLength: ALL_UIDS.length, maxLength: ALL_UIDS.length }),
  )
  .map(([present, as, parents, tags]) =>
    ALL_UIDS.flatMap((u, i) => {
      if (!present[i]) return [];
      // Parents only point "forward" so the hierarchy is acyclic (cedar-wasm rejects cycles).
      const ps = [...new Set((parents[i] ?? []).filter((j) => j > i))].map((j) => ALL_UIDS[j] as { type: string; id: string });
      const t = tags[i];
      return [{ uid: u, attrs: as[i] ?? {}, parents: ps, ...(t !== undefined ? { tags: t } : {}) }];
    }),
  );
const contextArb = fc.record(
  { n: smallLong, s: fc.constantFrom(...STRINGS), flag: fc.boolean(), set: fc.array(jsonValue, { maxLength: 3 }), rec: fc.record({ k: smallLong }), ip: fc.constantFrom(...IPS.slice(0, 7)).map((s) => ({ __extn: { fn: 'ip', arg: s } })) },
  { requiredKeys: [] },
);
const requestArb = fc.record({
  principal: anyUid,
  action: fc.constantFrom(...ACTIONS).map((id) => ({ type: 'Action', id })),
  resource: anyUid,
  context: contextArb,
});

function oracle(policies: string, entities: unknown[], r: { principal: unknown; action: unknown; resource: unknown; context: Record<string, unknown> }) {
  const ans = isAuthorized({ ...r, policies: { staticPolicies: policies }, entities } as unknown as AuthorizationCall);
  if (ans.type !== 'success') return { failure: ans.errors.map((e) => e.message).join('; ') };
  return {
    decision: ans.response.decision,
    reasons: [...ans.response.diagnostics.reason].sort(),
    errors: [...new Set(ans.response.diagnostics.errors.map((e) => e.policyId))].sort(),
  };
}

/** Longer runs (`DIFF_RUNS=10000`) need more than the default per-test timeout. */
const TIMEOUT = Math.max(30_000, Number(process.env.DIFF_RUNS ?? 0) * 20);

describe('differential against cedar-wasm', () => {
  it('agrees on decision, reasons and erroring policies', () => {
    fc.assert(
      fc.property(fc.array(policy, { minLength: 1, maxLength: 6 }), entitiesArb, fc.array(requestArb, { minLength: 1, maxLength: 4 }), (policies, entities, requests) => {
        const text = policies.join('\n');
        const set = compilePolicySet(text);
        const store = createEntityStore(entities);
        for (const r of requests) {
          const expected = oracle(text, entities, r);
          expect(expected).not.toHaveProperty('failure');
          const d = authorize(set, store, r);
          const actual = { decision: d.decision, reasons: [...d.reasons].sort(), errors: [...new Set(d.errors.map((e) => e.policyId))].sort() };
          expect({ text, request: r, ...actual }).toEqual({ text, request: r, ...expected });
        }
      }),
      { numRuns: Number(process.env.DIFF_RUNS ?? 400) },
    );
  }, TIMEOUT);

  it('agrees on simple attribute-versus-literal conditions (the flat-term fast path)', () => {
    const attrRef = fc.tuple(fc.constantFrom('context', 'principal', 'resource'), fc.constantFrom(...ATTRS, 'missing'));
    const literal = fc.oneof(fc.constantFrom(...LONG_LITS.slice(0, 5)), fc.constantFrom(...STRINGS).map(str), fc.constantFrom('true', 'false'));
    const term = fc.oneof(
      attrRef.map(([v, a]) => `${v}.${a}`),
      attrRef.map(([v, a]) => `!${v}.${a}`),
      fc.tuple(attrRef, fc.constantFrom('<', '<=', '>', '>=', '==', '!='), literal).map(([[v, a], op, k]) => `${v}.${a} ${op} ${k}`),
      fc.tuple(literal, fc.constantFrom('==', '!='), attrRef).map(([k, op, [v, a]]) => `${k} ${op} ${v}.${a}`),
    );
    const simplePolicy = fc
      .tuple(
        fc.constantFrom('permit', 'forbid'),
        fc.array(fc.tuple(fc.constantFrom('when', 'unless'), fc.array(fc.array(term, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 2 }),
      )
      // Each clause: a conjunction of disjunctions of simple terms (a disjunction inside && is parenthesised).
      .map(([eff, cls]) => `${eff}(principal, action, resource)${cls.map(([k, conj]) => ` ${k} { ${conj.map((dis) => (dis.length > 1 && conj.length > 1 ? `(${dis.join(' || ')})` : dis.join(' || '))).join(' && ')} }`).join('')};`);
    fc.assert(
      fc.property(fc.array(simplePolicy, { minLength: 1, maxLength: 4 }), entitiesArb, fc.array(requestArb, { minLength: 1, maxLength: 3 }), (policies, entities, requests) => {
        const text = policies.join('\n');
        const set = compilePolicySet(text);
        const store = createEntityStore(entities);
        for (const r of requests) {
          const d = authorize(set, store, r);
          const actual = { decision: d.decision, reasons: [...d.reasons].sort(), errors: [...new Set(d.errors.map((e) => e.policyId))].sort() };
          expect({ text, request: r, ...actual }).toEqual({ text, request: r, ...oracle(text, entities, r) });
        }
      }),
      { numRuns: Number(process.env.DIFF_RUNS ?? 300) },
    );
  }, TIMEOUT);

  it('agrees on template-linked policies', () => {
    const template = fc
      .tuple(fc.constantFrom('permit', 'forbid'), fc.constantFrom('principal == ?principal', 'principal in ?principal', 'principal is User in ?principal', 'principal'), fc.constantFrom('resource == ?resource', 'resource in ?resource', 'resource'), bool)
      .filter(([, p, r]) => p.includes('?') || r.includes('?'))
      .map(([eff, p, r, b]) => `${eff}(${p}, action, ${r}) when { ${b} };`);
    fc.assert(
      fc.property(template, fc.array(fc.tuple(anyUid, anyUid), { minLength: 1, maxLength: 3 }), entitiesArb, requestArb, (t, linkValues, entities, r) => {
        const links = linkValues.map(([p, res], i) => ({
          templateId: 'policy0',
          newId: `link${i}`,
          values: { ...(t.includes('?principal') ? { '?principal': p } : {}), ...(t.includes('?resource') ? { '?resource': res } : {}) },
        }));
        const ans = isAuthorized({ ...r, policies: { templates: { policy0: t }, templateLinks: links }, entities } as unknown as AuthorizationCall);
        if (ans.type !== 'success') throw new Error(ans.errors.map((e) => e.message).join('; '));
        const d = authorize(compilePolicySet(t, { links }), createEntityStore(entities), r);
        expect({ decision: d.decision, reasons: [...d.reasons].sort(), errors: d.errors.map((e) => e.policyId).sort() }).toEqual({
          decision: ans.response.decision,
          reasons: [...ans.response.diagnostics.reason].sort(),
          errors: [...new Set(ans.response.diagnostics.errors.map((e) => e.policyId))].sort(),
        });
      }),
      { numRuns: 150 },
    );
  });
});
