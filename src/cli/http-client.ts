import { isErrorCode } from '../core/error-catalog.ts';
import { MandateError, PROBLEM_MEMBERS } from '../core/errors.ts';

/** Talks to a running Mandate's admin API on behalf of the CLI. */
export interface ApiTarget {
  url: string;
  token: string;
}

export function apiTarget(options: { url?: string; token?: string }): ApiTarget {
  const url = options.url ?? process.env.MANDATE_URL ?? 'http://127.0.0.1:7400';
  const token = options.token ?? process.env.MANDATE_ADMIN_TOKEN;
  if (!token) throw new MandateError('CLI_TOKEN_REQUIRED', 'set MANDATE_ADMIN_TOKEN or pass --token');
  return { url: url.replace(/\/+$/, ''), token };
}

export async function callApi(target: ApiTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${target.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new MandateError('CLI_SERVER_UNREACHABLE', `cannot reach Mandate at ${target.url}: ${(error as Error).message}`, 503);
  }
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok) {
    // The problem's extension members (a refused policy's `errors`…) stay with the error for the command to show.
    const details = Object.fromEntries(Object.entries(parsed).filter(([name]) => !PROBLEM_MEMBERS.has(name)));
    // A server of another version may answer a code this catalog lacks: it stays readable as `remoteCode`.
    const code = isErrorCode(parsed.code) ? parsed.code : 'CLI_REQUEST_FAILED';
    if (parsed.code !== undefined && !isErrorCode(parsed.code)) details.remoteCode = parsed.code;
    throw new MandateError(code, String(parsed.detail ?? `${method} ${path} answered ${response.status}`), response.status, details);
  }
  return parsed;
}
