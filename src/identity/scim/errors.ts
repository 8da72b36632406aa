import type { ErrorCode } from '../../core/error-catalog.ts';
import { MandateError } from '../../core/errors.ts';

/** RFC 7644 §3.12, Table 9: the `scimType` detail keywords. */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive';

const TYPE_CODES = {
  invalidFilter: 'SCIM_INVALID_FILTER',
  tooMany: 'SCIM_TOO_MANY',
  uniqueness: 'SCIM_UNIQUENESS',
  mutability: 'SCIM_MUTABILITY',
  invalidSyntax: 'SCIM_INVALID_SYNTAX',
  invalidPath: 'SCIM_INVALID_PATH',
  noTarget: 'SCIM_NO_TARGET',
  invalidValue: 'SCIM_INVALID_VALUE',
  invalidVers: 'SCIM_INVALID_VERS',
  sensitive: 'SCIM_SENSITIVE',
} as const satisfies Record<ScimType, ErrorCode>;

const STATUS_CODES = { 401: 'SCIM_UNAUTHORIZED', 403: 'SCIM_FORBIDDEN', 404: 'SCIM_NOT_FOUND', 412: 'SCIM_PRECONDITION_FAILED', 413: 'SCIM_TOO_LARGE', 415: 'SCIM_CONTENT_TYPE' } as const satisfies Record<number, ErrorCode>;

/** The statuses a SCIM refusal without a `scimType` keyword may have: each has its own code. */
export type ScimStatus = keyof typeof STATUS_CODES;

/**
 * A SCIM refusal as a coded Mandate error: the `code` is stable (`SCIM_INVALID_FILTER`, …) and
 * `details.scimType` carries the RFC 7644 keyword the SCIM error body needs.
 */
export function scimError(scimType: ScimType, detail: string, status?: number): MandateError;
export function scimError(scimType: null, detail: string, status: ScimStatus): MandateError;
export function scimError(scimType: ScimType | null, detail: string, status = 400): MandateError {
  const code = scimType ? TYPE_CODES[scimType] : STATUS_CODES[status as ScimStatus];
  return new MandateError(code, detail, status, scimType ? { scimType } : undefined);
}

interface ScimmyError {
  status: number;
  scimType?: string;
  message: string;
}

function isScimmyError(error: unknown): error is ScimmyError {
  return error instanceof Error && error.name === 'SCIMError' && typeof (error as unknown as ScimmyError).status === 'number';
}

const SCIM_TYPES = new Set<string>(['invalidFilter', 'tooMany', 'uniqueness', 'mutability', 'invalidSyntax', 'invalidPath', 'noTarget', 'invalidValue', 'invalidVers', 'sensitive']);

/**
 * Runs a scimmy call on client input. scimmy reports bad input either as its SCIMError or, from its
 * schema coercion, as a TypeError naming the attribute; both are the client's mistake (400), never a 5xx.
 */
export function fromClientInput<T>(fallback: ScimType, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw translate(error, fallback);
  }
}

export async function fromClientInputAsync<T>(fallback: ScimType, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw translate(error, fallback);
  }
}

function translate(error: unknown, fallback: ScimType): unknown {
  if (error instanceof MandateError) return error;
  if (isScimmyError(error)) {
    const type = error.scimType && SCIM_TYPES.has(error.scimType) ? (error.scimType as ScimType) : fallback;
    return scimError(type, error.message, error.status >= 400 && error.status < 500 ? error.status : 400);
  }
  if (error instanceof TypeError || error instanceof RangeError || error instanceof SyntaxError) return scimError(fallback, error.message);
  return error;
}
