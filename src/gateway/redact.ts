import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../core/crypto.ts';

export const REDACTED = '[redacted]';

/** SHA-256 of the canonical JSON of the arguments: lets an investigator match a call without storing its values. */
export function argumentDigest(args: unknown): string {
  return sha256Hex(canonicalJson(args ?? {}));
}

/**
 * `value` with every configured path replaced by "[redacted]" (a copy; `value` itself when no path is
 * configured). Paths are dot-separated keys; `*` matches one level (any key or array index), `**` any
 * number of levels (including none).
 */
export function redact(value: unknown, paths: readonly string[]): unknown {
  const patterns = compiled(paths);
  if (patterns.length === 0) return value;
  return walk(value, [], patterns, 0);
}

/** Patterns by settings array: the settings object is replaced, never mutated, so its array is a stable key. */
const patternCache = new WeakMap<readonly string[], string[][]>();

function compiled(paths: readonly string[]): string[][] {
  let patterns = patternCache.get(paths);
  if (patterns === undefined) {
    patterns = paths.map((p) => p.split('.').filter((s) => s.length > 0).map((s) => (s === '*' || s === '**' ? s : keyOf(s))));
    patternCache.set(paths, patterns);
  }
  return patterns;
}

/**
 * Keys are compared case- and separator-insensitively: `apiKey` also catches `API_KEY`, `api-key` and
 * `ApiKey`. A secret that slips past redaction stays in the hash-chained audit log for good, so the
 * match errs towards redacting.
 */
function keyOf(segment: string): string {
  return segment.toLowerCase().replace(/[-_]/g, '');
}

/** `path` is one shared stack (pushed and popped around each member), so walking allocates no paths. */
function walk(value: unknown, path: string[], patterns: string[][], depth: number): unknown {
  if (depth > 32) return REDACTED;
  if (path.length > 0 && patterns.some((p) => matches(p, 0, path, 0))) return REDACTED;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      path.push(String(i));
      out[i] = walk(value[i], path, patterns, depth + 1);
      path.pop();
    }
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    // No prototype: a `__proto__` key from JSON.parse stays a member instead of becoming the prototype.
    const out = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(value)) {
      path.push(keyOf(k));
      out[k] = walk((value as Record<string, unknown>)[k], path, patterns, depth + 1);
      path.pop();
    }
    return out;
  }
  return value;
}

function matches(pattern: string[], pi: number, path: string[], i: number): boolean {
  if (pi === pattern.length) return i === path.length;
  const segment = pattern[pi]!;
  if (segment === '**') {
    for (let j = i; j <= path.length; j++) if (matches(pattern, pi + 1, path, j)) return true;
    return false;
  }
  if (i === path.length) return false;
  return (segment === '*' || segment === path[i]) && matches(pattern, pi + 1, path, i + 1);
}
