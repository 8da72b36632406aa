import { Command } from 'commander';
import { isMandateError } from '../core/errors.ts';
import { Store } from '../store/index.ts';
import { agentCommand, humanCommand } from './commands/registry.ts';
import { auditCommand } from './commands/audit.ts';
import { killCommand, mcpCommand } from './commands/gateway.ts';
import { addPolicyApplyCommand, addPolicyValidateCommand, entitiesCommand } from './commands/pdp.ts';
import { policyCommand } from './commands/policy.ts';
import { serveCommand } from './commands/serve.ts';
import { storeOptions } from './store-options.ts';

const program = new Command('mandate').description('Identity, access and audit control plane for AI agents').showHelpAfterError();

program.addCommand(serveCommand());
program
  .command('migrate')
  .description('apply database migrations (serve does this at start too)')
  .option('--data <dir>', 'data directory of the embedded store')
  .action(async (o: { data?: string }) => {
    const store = await Store.open(storeOptions(o.data));
    try {
      const applied = await store.migrate();
      process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'up to date\n');
    } finally {
      await store.close();
    }
  });
program.addCommand(humanCommand());
program.addCommand(agentCommand());
program.addCommand(auditCommand());
program.addCommand(killCommand());
program.addCommand(mcpCommand());
const policy = policyCommand();
addPolicyApplyCommand(policy);
addPolicyValidateCommand(policy);
program.addCommand(policy);
program.addCommand(entitiesCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (isMandateError(error)) process.stderr.write(`mandate: ${error.message} [${error.code}]\n`);
  else process.stderr.write(`mandate: ${(error as Error).message}\n`);
  process.exitCode = 2;
}
