import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { runPolicyEval } from '../../policy/index.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function policyCommand(): Command {
  const policy = new Command('policy').description('Cedar policies: evaluate requests offline');

  policy
    .command('eval')
    .description(
      'read requests as JSON lines on standard input ({"principal":{"type","id"},"action":…,"resource":…,"context":{}}), ' +
        'write one decision per line ({"decision","reasons","errors"}) in the same order',
    )
    .requiredOption('--policies <file>', 'Cedar policy file')
    .requiredOption('--entities <file>', 'entities as cedar-wasm entity JSON')
    .option('--schema <file>', 'Cedar schema: validate the policies against it (issues go to standard error; decisions are unchanged)')
    .action(async (o: { policies: string; entities: string; schema?: string }) => {
      const input = await readStdin();
      const out = runPolicyEval(
        {
          policies: readFileSync(o.policies, 'utf8'),
          entities: readFileSync(o.entities, 'utf8'),
          ...(o.schema !== undefined ? { schema: readFileSync(o.schema, 'utf8') } : {}),
          onIssue: (i) => process.stderr.write(`${o.policies}:${i.line}:${i.column}: ${i.severity}: ${i.policyId}: ${i.message}\n`),
        },
        input,
      );
      process.stdout.write(out);
    });

  return policy;
}
