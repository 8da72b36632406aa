/**
 * Cedar `like`: `*` matches any sequence of characters, everything else (including an escaped `\*`,
 * which the parser already turned into a literal) matches itself. Anchored head and tail, then each
 * middle segment at its leftmost occurrence (native search): never exponential, never O(n·m) backtracking.
 */
export type PatternElem = 'Wildcard' | { Literal: string };

export function compileLike(pattern: readonly PatternElem[]): (s: string) => boolean {
  // Tokens: one literal character, or null for a wildcard (consecutive wildcards collapse). Working on
  // UTF-16 code units is exact: literals and subjects are whole strings, so a literal can never match
  // half a surrogate pair.
  const toks: (string | null)[] = [];
  for (const el of pattern) {
    if (el === 'Wildcard') {
      if (toks[toks.length - 1] !== null) toks.push(null);
    } else {
      for (let i = 0; i < el.Literal.length; i++) toks.push(el.Literal[i] as string);
    }
  }
  if (!toks.includes(null)) {
    const lit = toks.join('');
    return (s) => s === lit;
  }
  // Literal segments between wildcards. With `*` as the only metacharacter, matching each middle
  // segment at its leftmost occurrence is exact, and `indexOf` is native string search: a decision stays
  // fast even for a pathological pattern (`*aaaa…ab`) against a long string, where backtracking spent
  // O(n·m) — seconds on one request — before.
  const segs: string[] = [''];
  for (const t of toks) {
    if (t === null) segs.push('');
    else segs[segs.length - 1] += t;
  }
  const head = segs[0] as string;
  const tail = segs[segs.length - 1] as string;
  const middle = segs.slice(1, -1).filter((x) => x.length > 0);
  return (s) => {
    if (s.length < head.length + tail.length || !s.startsWith(head) || !s.endsWith(tail)) return false;
    let pos = head.length;
    const limit = s.length - tail.length;
    for (const seg of middle) {
      const at = s.indexOf(seg, pos);
      if (at < 0 || at + seg.length > limit) return false;
      pos = at + seg.length;
    }
    return true;
  };
}
