import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { validateAgainstMandateSchema } from '../../pdp/index.ts';
import { isMandateError } from '../../core/errors.ts';
import { validatePolicies, type ValidationIssue } from '../../policy/index.ts';
import { apiTarget, callApi } from '../http-client.ts';
import { print } from '../output.ts';
import type { RemoteOptions } from '../remote.ts';


/**
 * `mandate policy apply`: sends a Cedar file to a running server as a new active version. The server
 * refuses a file that does not validate against Mandate's schema (POLICY_INVALID): its errors are
 * printed as `file:line:column`, the exit code is 1 and the active version stays. `--force` applies it
 * anyway (audited as forced).
 */
export function addPolicyApplyCommand(policy: Command): void {
  policy
    .command('apply')
    .description('apply a Cedar policy file as a new version on a running server, and activate it')
    .requiredOption('--file <file>', 'Cedar policy file')
    .option('--mode <mode>', 'enforce or log-only', 'enforce')
    .option('--note <text>', 'why this version')
    .option('--force', "apply even if it does not validate against Mandate's schema (audited as forced)")
    .option('--url <url>', 'Mandate base URL (default $MANDATE_URL)')
    .option('--token <token>', 'admin token (default $MANDATE_ADMIN_TOKEN)')
    .option('--json', 'print JSON')
    .action(async (o: RemoteOptions & { file: string; mode: string; note?: string; force?: boolean }) => {
      let result: unknown;
      try {
        result = await callApi(apiTarget(o), 'PUT', '/api/v1/policies', { cedar: readFileSync(o.file, 'utf8'), mode: o.mode, ...(o.note && { note: o.note }), ...(o.force && { force: true }) });
      } catch (error) {
        if (!isMandateError(error) || error.code !== 'POLICY_INVALID' || !Array.isArray(error.details?.errors)) throw error;
        for (const i of error.details.errors as ValidationIssue[]) process.stderr.write(`${o.file}:${i.line}:${i.column}: ${i.severity}: ${i.policyId}: ${i.message}\n`);
        process.stderr.write(`mandate: ${o.file} was not applied: it does not validate against Mandate's schema (--force applies it anyway) [POLICY_INVALID]\n`);
        process.exitCode = 1;
        return;
      }
      print(result, o.json, ['version', 'mode', 'policies', 'active']);
    });
}

/** `mandate policy validate`: offline, against Mandate's schema or a given one; exit 1 on errors. */
export function addPolicyValidateCommand(policy: Command): void {
  policy
    .command('validate')
    .description("validate a Cedar policy file against Mandate's schema (or --schema); prints file:line:column issues, exit 1 on errors")
    .requiredOption('--file <file>', 'Cedar policy file')
    .option('--schema <file>', 'Cedar schema (human-readable syntax) instead of Mandate\'s')
    .option('--json', 'print JSON')
    .action((o: { file: string; schema?: string; json?: boolean }) => {
      const cedar = readFileSync(o.file, 'utf8');
      const issues = o.schema ? validatePolicies(cedar, readFileSync(o.schema, 'utf8')) : validateAgainstMandateSchema(cedar);
      if (o.json) process.stdout.write(`${JSON.stringify(issues)}\n`);
      else for (const i of issues) process.stdout.write(`${o.file}:${i.line}:${i.column}: ${i.severity}: ${i.policyId}: ${i.message}\n`);
      process.exitCode = issues.some((i) => i.severity === 'error') ? 1 : 0;
    });
}

/** `mandate entities import`: sends Cedar entity JSON to a running server. */
export function entitiesCommand(): Command {
  const entities = new Command('entities').description('entities the policy decision point decides over');
  entities
    .command('import')
    .description('import Cedar entities (cedar-wasm entity JSON array) into a running server')
    .requiredOption('--file <file>', 'entities JSON file')
    .option('--replace', 'replace every previously imported entity')
    .option('--url <url>', 'Mandate base URL (default $MANDATE_URL)')
    .option('--token <token>', 'admin token (default $MANDATE_ADMIN_TOKEN)')
    .option('--json', 'print JSON')
    .action(async (o: RemoteOptions & { file: string; replace?: boolean }) => {
      const list = JSON.parse(readFileSync(o.file, 'utf8')) as unknown[];
      print(await callApi(apiTarget(o), 'POST', '/api/v1/entities', { entities: list, replace: o.replace ?? false }), o.json, ['imported']);
    });
  return entities;
}
