import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileLike, type PatternElem } from './like.ts';

/** Reference semantics: the pattern as an anchored regular expression (fine for short inputs). */
function reference(pattern: readonly PatternElem[], s: string): boolean {
  const source = pattern.map((el) => (el === 'Wildcard' ? '[\\s\\S]*' : el.Literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 'u').test(s);
}

describe('Cedar like', () => {
  const alphabet = fc.constantFrom('a', 'b', '*', 'é');
  const elem: fc.Arbitrary<PatternElem> = fc.oneof(fc.constant('Wildcard' as const), fc.string({ unit: alphabet, minLength: 1, maxLength: 4 }).map((Literal) => ({ Literal })));
  it('matches the reference semantics on arbitrary patterns and subjects', () => {
    fc.assert(
      fc.property(fc.array(elem, { maxLength: 6 }), fc.string({ unit: alphabet, maxLength: 12 }), (pattern, s) => {
        expect(compileLike(pattern)(s)).toBe(reference(pattern, s));
      }),
      { numRuns: 5000 },
    );
  });

  // Correctness on the inputs that made the old backtracking matcher spend seconds (2.6 s on the first
  // pattern); speed is not asserted here (tests never depend on timing), but a regression to
  // backtracking would stall this test for seconds and show in the suite's duration.
  it('matches pathological patterns against long strings correctly', () => {
    const s = 'a'.repeat(500_000);
    const patterns: PatternElem[][] = [
      ['Wildcard', { Literal: `${'a'.repeat(1000)}b` }],
      ['Wildcard', { Literal: `${'a'.repeat(1000)}b` }, 'Wildcard'],
      ...[1, 2].map(() => Array.from({ length: 200 }, (_, i): PatternElem => (i % 2 === 0 ? 'Wildcard' : { Literal: 'a' })).concat([{ Literal: 'b' }])),
    ];
    for (const p of patterns) expect(compileLike(p)(s)).toBe(false);
    expect(compileLike(['Wildcard', { Literal: 'a'.repeat(1000) }, 'Wildcard'])(s)).toBe(true);
  });
});
