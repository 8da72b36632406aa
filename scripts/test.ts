/**
 * The whole test suite, as CI runs it (`npm test`): type check, lint, then every unit and end-to-end
 * test. The PostgreSQL backend is tested against a real server; if it is unreachable this fails rather
 * than skipping those tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import pg from 'pg';

const databaseUrl = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function step(name: string, command: string, args: string[]): void {
  process.stdout.write(`\n== ${name}: ${command} ${args.join(' ')}\n`);
  const result = spawnSync(command, args, { stdio: 'inherit', env: process.env });
  if (result.status !== 0) {
    process.stderr.write(`\n${name} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
}

const [major] = process.versions.node.split('.').map(Number);
if ((major ?? 0) < 22) {
  process.stderr.write(`Node.js ${process.versions.node} is too old: run through npm so the project's Node 24 is used\n`);
  process.exit(1);
}

const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
try {
  await client.connect();
  await client.query('select 1');
  await client.end();
} catch (error) {
  process.stderr.write(`PostgreSQL is unreachable at ${databaseUrl} (${(error as Error).message}).\nThe PostgreSQL backend tests need it; set MANDATE_TEST_DATABASE_URL or start the server.\n`);
  process.exit(1);
}

step('typecheck', 'tsc', ['--noEmit']);
step('lint', 'eslint', ['.']);

// Vitest's JSON report gives the counts for the plain closing line CI reads.
const report = '.tmp/vitest-report.json';
rmSync(report, { force: true });
process.stdout.write('\n== tests: vitest run\n');
const tests = spawnSync('vitest', ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], { stdio: 'inherit', env: process.env });
let summary = '';
if (existsSync(report)) {
  const { numPassedTests, numFailedTests, numPendingTests } = JSON.parse(readFileSync(report, 'utf8')) as Record<string, number>;
  summary = `${numPassedTests} passed, ${numFailedTests} failed${numPendingTests ? `, ${numPendingTests} skipped` : ''}`;
}
if (summary) process.stdout.write(`\ntests: ${summary}\n`);
process.exit(tests.status ?? 1);
