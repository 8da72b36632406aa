/**
 * Structural limits checked on Cedar text (policies and schemas) *before* it reaches cedar-wasm.
 *
 * Why: cedar-wasm's parser recurses on nesting (`(((…)))`, `[[[…]]]`, `{a:{a:…}}`) and on operator
 * chains (`a && a && …`, `if … else if …`). Around 120 nested records or a few thousand `&&` the Rust
 * stack inside the WebAssembly instance overflows into its own linear memory: the call fails with
 * "memory access out of bounds" and *every later call on that instance fails too* — one request would
 * leave the whole process unable to parse, validate or apply any policy until restarted. The limits
 * below sit far under the measured thresholds and far above what hand-written policies use; each
 * policy (up to its top-level `;`) is counted separately, so large policy sets are unaffected.
 */
import { MandateError } from '../core/errors.ts';

/** Deepest bracket nesting (`(`, `[`, `{` combined) in one policy or schema. */
export const MAX_NESTING = 24;
/** Operator characters (`&&` counts 2) and tree-building keywords, per policy. */
export const MAX_OPERATORS = 2000;

const isIdentChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

// Keywords that add a level to the expression tree, with their weight: an `if … then … else` chain nests
// without brackets and costs cedar-wasm's parser far more stack per level than a binary operator.
const KEYWORDS = new Map([['if', 10], ['then', 1], ['else', 1], ['in', 1], ['has', 1], ['like', 1], ['is', 1]]);

function tooComplex(what: string, index: number, limit: number): MandateError {
  return new MandateError('POLICY_TOO_COMPLEX', `policy${index}: ${what} (at most ${limit})`, 400, { policyId: `policy${index}`, limit });
}

/** Throws `POLICY_TOO_COMPLEX` (400) when a policy nests too deeply or chains too many operators. */
export function checkCedarComplexity(text: string, kind: 'policy' | 'schema' = 'policy'): void {
  let depth = 0;
  let ops = 0;
  let index = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i + 1) === 47) {
      while (i < n && text.charCodeAt(i) !== 10) i++;
      continue;
    }
    if (c === 34) {
      // String literal; `\"` does not end it.
      i++;
      while (i < n && text.charCodeAt(i) !== 34) i += text.charCodeAt(i) === 92 ? 2 : 1;
      i++;
      continue;
    }
    if (c === 40 || c === 91 || c === 123) {
      if (++depth > MAX_NESTING) throw tooComplex(`${kind} nests brackets too deeply`, index, MAX_NESTING);
    } else if (c === 41 || c === 93 || c === 125) {
      if (depth > 0) depth--;
    } else if (c === 59 && depth === 0) {
      index++;
      ops = 0;
    } else if (isIdentChar(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(text.charCodeAt(j))) j++;
      ops += KEYWORDS.get(text.slice(i, j)) ?? 0;
      if (ops > MAX_OPERATORS) throw tooComplex(`${kind} has too many operators`, index, MAX_OPERATORS);
      i = j;
      continue;
    } else if (c === 38 || c === 124 || c === 61 || c === 33 || c === 60 || c === 62 || c === 43 || c === 45 || c === 42 || c === 46) {
      // & | = ! < > + - * . — a two-character operator counts twice, which only makes the limit stricter.
      if (++ops > MAX_OPERATORS) throw tooComplex(`${kind} has too many operators`, index, MAX_OPERATORS);
    }
    i++;
  }
}
