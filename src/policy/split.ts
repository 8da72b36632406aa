/**
 * A lexical pass over Cedar policy text: splits it into one chunk per policy (at top-level `;`,
 * respecting strings and comments), notes whether a chunk is a template (has `?principal` /
 * `?resource`), and finds integer literals too large for a double. cedar-wasm's JSON form rounds
 * those, and distinct literals can round to the same double; record keys come back sorted, so source
 * order does not say which is which either. So each such literal gets a unique safe-integer stand-in
 * (a marker that occurs nowhere in the policy's text); the JSON form is taken from the text with the
 * stand-ins, and the compiler maps each stand-in back to its exact literal.
 */
export interface PolicyChunk {
  /** The policy's text, from just after the previous `;` through its own `;`. */
  readonly text: string;
  /** Offset of `text` in the whole policy-set text. */
  readonly start: number;
  readonly isTemplate: boolean;
  /** Stand-in → exact magnitude of each integer literal beyond 2^53 − 1 (empty for most policies). */
  readonly bigLiterals: ReadonlyMap<number, bigint>;
  /** `text` with those literals replaced by their stand-ins (the same string when there are none). */
  readonly jsonText: string;
}

interface BigLiteral {
  readonly at: number;
  readonly end: number;
  readonly value: bigint;
}

/** First stand-in tried: 2^52, well clear of the literals people write, and still a safe integer. */
const FIRST_STAND_IN = 4503599627370496;

function chunkOf(whole: string, start: number, end: number, isTemplate: boolean, bigs: readonly BigLiteral[]): PolicyChunk {
  const text = whole.slice(start, end);
  if (bigs.length === 0) return { text, start, isTemplate, bigLiterals: new Map(), jsonText: text };
  const bigLiterals = new Map<number, bigint>();
  let jsonText = '';
  let from = start;
  let next = FIRST_STAND_IN;
  for (const b of bigs) {
    while (text.includes(String(next))) next++;
    bigLiterals.set(next, b.value);
    jsonText += whole.slice(from, b.at) + String(next);
    from = b.end;
    next++;
  }
  jsonText += whole.slice(from, end);
  return { text, start, isTemplate, bigLiterals, jsonText };
}

const isIdentChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

export function splitPolicies(text: string): PolicyChunk[] {
  const chunks: PolicyChunk[] = [];
  let start = 0;
  let hasContent = false;
  let isTemplate = false;
  let bigs: BigLiteral[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i + 1) === 47) {
      // `//` comment to end of line
      while (i < n && text.charCodeAt(i) !== 10) i++;
      continue;
    }
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    hasContent = true;
    if (c === 34) {
      i++;
      while (i < n && text.charCodeAt(i) !== 34) i += text.charCodeAt(i) === 92 ? 2 : 1;
      i++;
      continue;
    }
    if (c === 59) {
      i++;
      chunks.push(chunkOf(text, start, i, isTemplate, bigs));
      start = i;
      hasContent = false;
      isTemplate = false;
      bigs = [];
      continue;
    }
    if (c === 63 && /^\?(principal|resource)\b/.test(text.slice(i, i + 11))) {
      isTemplate = true;
      i++;
      continue;
    }
    if (isIdentChar(c)) {
      const s = i;
      while (i < n && isIdentChar(text.charCodeAt(i))) i++;
      if (c >= 48 && c <= 57 && i - s >= 16) {
        const lit = text.slice(s, i);
        if (/^[0-9]+$/.test(lit)) {
          const b = BigInt(lit);
          if (b > 9007199254740991n) bigs.push({ at: s, end: i, value: b });
        }
      }
      continue;
    }
    i++;
  }
  // A trailing policy without `;` is kept so the parser reports it.
  if (hasContent) chunks.push(chunkOf(text, start, n, isTemplate, bigs));
  return chunks;
}
