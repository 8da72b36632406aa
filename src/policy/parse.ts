/**
 * Policy text → one JSON (EST) form per policy via cedar-wasm. Policy ids are `policy0`, `policy1`, … in
 * file order, counting templates too, exactly as Cedar assigns them when parsing a policy set.
 * Syntax errors become `POLICY_PARSE` with the line and column of the first error.
 */
import { policyToJson, templateToJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { DetailedError, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { MandateError } from '../core/errors.ts';
import { checkCedarComplexity } from './limits.ts';
import { splitPolicies } from './split.ts';
import type { PolicyChunk } from './split.ts';

export type { PolicyJson };

export interface ParsedPolicy {
  readonly id: string;
  /** Position in the file (0-based); ties ids to file order. */
  readonly index: number;
  readonly effect: 'permit' | 'forbid';
  /** `@name("value")` annotations; a bare `@name` has the value `""`. */
  readonly annotations: Readonly<Record<string, string>>;
  readonly est: PolicyJson;
  readonly isTemplate: boolean;
  /** Line and column (1-based) where the policy starts. */
  readonly line: number;
  readonly column: number;
  readonly chunk: PolicyChunk;
}

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/** Cedar reports byte offsets into UTF-8; JS strings index UTF-16 code units. */
function byteToCharOffset(text: string, byteOffset: number): number {
  const bytes = utf8.encode(text);
  return decoder.decode(bytes.subarray(0, Math.min(byteOffset, bytes.length))).length;
}

/** 1-based line and column of offsets into one text; newline positions are found once. */
export class LineIndex {
  readonly #starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.#starts.push(i + 1);
  }
  at(offset: number): { line: number; column: number } {
    const s = this.#starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((s[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (s[lo] as number) + 1 };
  }
}

/** Absolute position in the full text of a cedar-wasm error about `chunk`. */
export function errorPosition(lines: LineIndex, chunk: PolicyChunk, err: DetailedError): { line: number; column: number; offset: number } {
  const loc = err.sourceLocations?.[0] ?? err.related?.[0]?.sourceLocations?.[0];
  let offset = chunk.start;
  if (loc !== undefined) offset += byteToCharOffset(chunk.text, loc.start);
  else {
    // No location: point at the policy's first non-blank character.
    const m = /\S/.exec(chunk.text);
    offset += m?.index ?? 0;
  }
  return { ...lines.at(offset), offset };
}

function describe(err: DetailedError): string {
  const label = err.sourceLocations?.find((l) => l.label)?.label;
  const head = err.message.replace(/^failed to parse (policy|template) from string: /, '') + (label ? ` (${label})` : '');
  return [head, ...(err.related?.map((r) => r.message).filter(Boolean) ?? [])].join('; ');
}

/**
 * Parsed JSON forms by exact policy text. cedar-wasm needs a few hundred µs per policy, so recompiling
 * a 10,000-policy set after editing one policy (a new version, an impact preview) would otherwise take
 * seconds; with the cache only changed policies are parsed again. Bounded, least recently used first out.
 */
const estCache = new Map<string, PolicyJson>();
const EST_CACHE_MAX = 20_000;

function deepFreeze(x: unknown): void {
  if (typeof x !== 'object' || x === null || Object.isFrozen(x)) return;
  Object.freeze(x);
  for (const v of Object.values(x)) deepFreeze(v);
}

function toJson(chunk: PolicyChunk): ReturnType<typeof policyToJson> {
  const hit = estCache.get(chunk.text);
  if (hit !== undefined) {
    estCache.delete(chunk.text);
    estCache.set(chunk.text, hit);
    return { type: 'success', json: hit };
  }
  const parse = chunk.isTemplate ? templateToJson : policyToJson;
  let answer = parse(chunk.text);
  // Errors come from the text as written; the JSON form from the text with literal stand-ins (split.ts).
  if (answer.type === 'success' && chunk.jsonText !== chunk.text) answer = parse(chunk.jsonText);
  if (answer.type === 'success') {
    // Shared between compiled sets, so frozen: a caller cannot change another set's policy.
    deepFreeze(answer.json);
    estCache.set(chunk.text, answer.json);
    if (estCache.size > EST_CACHE_MAX) estCache.delete(estCache.keys().next().value as string);
  }
  return answer;
}

export function parsePolicies(text: string): ParsedPolicy[] {
  // Before cedar-wasm sees it: deep nesting overflows the instance's stack and breaks it for good.
  checkCedarComplexity(text);
  const chunks = splitPolicies(text);
  const lines = new LineIndex(text);
  return chunks.map((chunk, index) => {
    const answer = toJson(chunk);
    if (answer.type === 'failure') {
      const err = answer.errors[0] ?? { message: 'unknown parse error', help: null, code: null, url: null, severity: null };
      const pos = errorPosition(lines, chunk, err);
      throw new MandateError('POLICY_PARSE', `policy${index} (line ${pos.line}, column ${pos.column}): ${describe(err)}`, 400, {
        line: pos.line,
        column: pos.column,
        offset: pos.offset,
        policyId: `policy${index}`,
      });
    }
    const est = answer.json;
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(est.annotations ?? {})) annotations[k] = v ?? '';
    const first = /\S/.exec(chunk.text)?.index ?? 0;
    const at = lines.at(chunk.start + first);
    return {
      id: `policy${index}`,
      index,
      effect: est.effect,
      annotations,
      est,
      isTemplate: chunk.isTemplate,
      line: at.line,
      column: at.column,
      chunk,
    };
  });
}
