/**
 * Writes the error table of docs/api.md from the catalog (src/core/error-catalog.ts), between the
 * `<!-- error-table:start -->` and `<!-- error-table:end -->` markers: `npm run docs:errors`.
 * src/core/error-catalog.test.ts fails when the committed table is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERRORS, type ErrorCode } from '../src/core/error-catalog.ts';
import { withSection } from './generated-section.ts';

export const START = '<!-- error-table:start -->';
export const END = '<!-- error-table:end -->';

/** The table as markdown, codes in alphabetical order. */
export function errorTable(): string {
  const codes = (Object.keys(ERRORS) as ErrorCode[]).sort();
  const rows = codes.map((code) => `| \`${code}\` | ${ERRORS[code].status} | ${ERRORS[code].title.replaceAll('|', '\\|')} |`);
  return ['| code | status | title |', '|---|---|---|', ...rows].join('\n');
}

/** `doc` with the text between the markers replaced by the current table. */
export const withErrorTable = (doc: string): string => withSection(doc, START, END, errorTable(), 'docs/api.md');

/** docs/api.md, found from this file's place in the repository (never from the working directory). */
export const API_DOC = fileURLToPath(new URL('../docs/api.md', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const doc = readFileSync(API_DOC, 'utf8');
  const next = withErrorTable(doc);
  if (next !== doc) writeFileSync(API_DOC, next);
  process.stdout.write(next === doc ? 'docs/api.md: the error table is current\n' : 'docs/api.md: error table written\n');
}
