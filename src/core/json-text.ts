/**
 * What JSON text may carry into Mandate. JSON allows `\ud800` (a lone UTF-16 surrogate) but nothing
 * downstream can keep it: SQLite and PostgreSQL store text as UTF-8 and replace it with U+FFFD, so a
 * value hashed before it was stored no longer matches after (the audit chain broke at that row), and a
 * name stored silently differs from the one sent. I-JSON (RFC 7493 §2.1), which RFC 8785 builds on,
 * forbids such strings; so does Mandate, at every entry point, before anything is decided or hashed.
 */

/**
 * Deepest nesting of arrays/objects accepted in a JSON body. Everything downstream (zod, the Cedar value
 * conversion, canonical JSON for the audit chain) recurses per level: around 10,000 levels the stack
 * overflows and the request ended as a 500. No legitimate body comes near this.
 */
export const MAX_JSON_DEPTH = 64;

export type JsonTextProblem = 'deep' | 'nul' | 'surrogate';

/**
 * Whether `text` (JSON source) can decode to a string holding a surrogate at all. Text read from UTF-8
 * bytes holds none; only a `\uD800`–`\uDFFF` escape makes one. A cheap scan, so the walk below runs
 * only for the rare body that has such an escape (false positives, such as an escaped backslash
 * followed by `uD8`, only cost that walk).
 */
export function mayHoldSurrogates(text: string): boolean {
  return /\\u[dD][89abcdefABCDEF]/.test(text);
}

/**
 * One iterative walk over a parsed JSON value (so it cannot itself overflow the stack): `deep` when it
 * nests deeper than `maxDepth`, `nul` when a string or key holds U+0000 (PostgreSQL text cannot), and
 * `surrogate` when one is not well-formed UTF-16; otherwise null.
 */
export function inspectJson(value: unknown, maxDepth = MAX_JSON_DEPTH): JsonTextProblem | null {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) return problem;
    } else if (v !== null && typeof v === 'object') {
      if (depth >= maxDepth) return 'deep';
      if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
      else
        for (const [k, x] of Object.entries(v)) {
          const problem = stringProblem(k);
          if (problem) return problem;
          stack.push([x, depth + 1]);
        }
    }
  }
  return null;
}

function stringProblem(s: string): JsonTextProblem | null {
  if (s.includes('\u0000')) return 'nul';
  if (!s.isWellFormed()) return 'surrogate';
  return null;
}

/** Whether any string or key in a parsed JSON value is not well-formed UTF-16 (iterative, any depth). */
export function hasLoneSurrogate(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return true;
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) stack.push(...v);
      else
        for (const [k, x] of Object.entries(v)) {
          if (!k.isWellFormed()) return true;
          stack.push(x);
        }
    }
  }
  return false;
}

/**
 * `s` as a text column can keep it: well-formed, and without U+0000 (PostgreSQL text cannot hold it).
 * Each lone surrogate or NUL becomes U+FFFD, which is what a UTF-8 store would have made of the first.
 */
export function storableText(s: string): string {
  const w = wellFormed(s);
  return w.includes('\u0000') ? w.replaceAll('\u0000', '\ufffd') : w;
}

/** The well-formed form of `s`: each lone surrogate becomes U+FFFD, exactly what a UTF-8 store keeps. */
export function wellFormed(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

/** `value` with every string and key well-formed (see `wellFormed`); a copy, never the original changed. */
export function wellFormedDeep(value: unknown): unknown {
  if (typeof value === 'string') return wellFormed(value);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map(wellFormedDeep);
  // No prototype: a `__proto__` key stays a member instead of becoming the prototype.
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(value)) out[wellFormed(k)] = wellFormedDeep(v);
  return out;
}
