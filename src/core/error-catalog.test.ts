import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { withErrorTable } from '../../scripts/error-table.ts';
import { TOKEN_ERROR_CODES, TokenError } from '../oauth/errors.ts';
import { ERRORS, isErrorCode, type ErrorCode } from './error-catalog.ts';
import { MandateError, notFound, toProblem } from './errors.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The call sites that answer a code with another status than the catalog's, on purpose (each is
 * documented in docs/api.md): a resource named in a request body that does not exist is 422, not the
 * 404 of a missing path resource, and so on. Anything else that disagrees with the catalog is a mistake.
 */
const OVERRIDES = [
  'src/identity/service.ts IDENTITY_OWNER_INACTIVE 409',
  'src/identity/service.ts HANDOVER_TARGET_INACTIVE 422',
  'src/identity/service.ts GROUP_NOT_FOUND 422',
  'src/oauth/delegations.ts IDENTITY_NOT_FOUND 422',
  'src/oauth/federation.ts IDENTITY_NOT_FOUND 422',
  'src/oauth/service.ts IDENTITY_NOT_ACTIVE 400',
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every `new MandateError('CODE', message, <number>)` in src: the code and the status written there. */
function explicitStatuses(): { site: string; file: string; code: string; status: number }[] {
  const found: { site: string; file: string; code: string; status: number }[] = [];
  for (const path of sources(join(ROOT, 'src'))) {
    const file = relative(ROOT, path);
    const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && node.expression.getText(source) === 'MandateError') {
        const [code, , status] = node.arguments ?? [];
        if (code && ts.isStringLiteral(code) && status && ts.isNumericLiteral(status)) {
          found.push({ site: `${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}`, file, code: code.text, status: Number(status.text) });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

describe('the error catalog', () => {
  it('a coded error answers its catalog status unless the call site overrides it', () => {
    expect(new MandateError('HUMAN_EXISTS', 'exists').status).toBe(409);
    expect(new MandateError('STORE_UNAVAILABLE', 'away').status).toBe(503);
    expect(new MandateError('IDENTITY_OWNER_INACTIVE', 'resume', 409).status).toBe(409);
    expect(notFound('approval_rule', 'apr_1')).toMatchObject({ code: 'APPROVAL_RULE_NOT_FOUND', status: 404 });
    // @ts-expect-error a code outside the catalog does not type-check
    expect(new MandateError('SOMETHING_NEW', 'x').status).toBe(500);
    // @ts-expect-error neither does a not-found of something the catalog has no code for
    expect(notFound('spaceship', 'x').code).toBe('SPACESHIP_NOT_FOUND');
  });

  it('every explicit status at a call site in src equals the catalog status, but for the listed overrides', () => {
    const sites = explicitStatuses();
    expect(sites.length).toBeGreaterThan(150);
    const unknown = sites.filter((s) => !isErrorCode(s.code)).map((s) => `${s.site} ${s.code}`);
    expect(unknown).toEqual([]);
    const disagreeing = sites.filter((s) => ERRORS[s.code as ErrorCode].status !== s.status).map((s) => `${s.file} ${s.code} ${s.status}`);
    expect([...new Set(disagreeing)].sort()).toEqual([...OVERRIDES].sort());
  });

  it('token refusals answer the catalog status (a decommissioned identity refused as a token is 401)', () => {
    const statuses = TOKEN_ERROR_CODES.filter((code) => new TokenError(code, 'x').status !== ERRORS[code].status);
    expect(statuses).toEqual(['IDENTITY_DECOMMISSIONED']);
  });

  it('every entry is an error status with a title', () => {
    for (const [code, { status, title }] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      expect(status >= 400 && status <= 599, code).toBe(true);
      expect(title.length, code).toBeGreaterThan(0);
    }
  });

  it('problem+json keeps the code as its title and adds Retry-After only for conditions that pass', () => {
    const problem = toProblem(new MandateError('STORE_UNAVAILABLE', 'away'));
    expect(problem).toMatchObject({ status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '5' } });
    expect(JSON.parse(problem.body)).toEqual({ type: 'https://mandate.dev/problems/store-unavailable', title: 'STORE_UNAVAILABLE', status: 503, detail: 'away', code: 'STORE_UNAVAILABLE' });
    expect(toProblem(new MandateError('HUMAN_EXISTS', 'exists')).headers).toEqual({ 'content-type': 'application/problem+json' });
  });

  it("docs/api.md's error table is the catalog's (npm run docs:errors writes it)", () => {
    const doc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    expect(withErrorTable(doc), 'the error table in docs/api.md is stale: run npm run docs:errors').toBe(doc);
  });
});
