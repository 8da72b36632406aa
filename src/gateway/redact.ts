import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../core/crypto.ts';

export const REDACTED = '[redacted]';

/** SHA-256 of the canonical JSON of the arguments: lets an investigator match a call without storing its values. */
export function argumentDigest(args: unknown): string {
  return sha256Hex(canonicalJson(args ?? {}));
}

/**
 * A copy of `value` with every configured path replaced by "[redacted]". Paths are dot-separated keys;
 * `*` matches one level (any key or array index), `**` any number of levels (including none).
 */
export function redact(value: unknown, paths: readonly string[]): unknown {
  const patterns = paths.map((p) => p.split('.').filter((s) => s.length > 0).map((s) => (s === '*' || s === '**' ? s : keyOf(s))));
  return walk(value, [], patterns, 0);
}

/**
 * Keys are compared case- and separator-insensitively: `apiKey` also catches `API_KEY`, `api-key` and
 * `ApiKey`. A secret that slips past redaction stays in the hash-chained audit log for good, so the
 * match errs towards redacting.
 */
function keyOf(segment: string): string {
  return segment.toLowerCase().replace(/[-_]/g, '');
}

function walk(value: unknown, path: string[], patterns: string[][], depth: number): unknown {
  if (depth > 32) return REDACTED;
  if (path.length > 0 && patterns.some((p) => matches(p, 0, path, 0))) return REDACTED;
  if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, String(i)], patterns, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = walk(v, [...path, keyOf(k)], patterns, depth + 1);
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
