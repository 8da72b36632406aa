import { Command } from 'commander';
import { configFromEnvironment, configFromFile, loadConfig, type ConfigInput } from '../../core/config.ts';
import { readFileSync } from 'node:fs';
import { startServer, type Services } from '../../server/index.ts';
import { seedGatewayDemo } from '../../gateway/index.ts';
import { seedGovernanceDemo } from '../../governance/index.ts';
import { seedOAuthDemo } from '../../oauth/index.ts';
import { seedDemo, type DemoSeeder } from '../demo.ts';

/** Domain demo seeders, run in order after the identities are seeded. */
export const demoSeeders: DemoSeeder[] = [seedOAuthDemo, seedGatewayDemo, seedGovernanceDemo];

export function serveCommand(): Command {
  return new Command('serve')
    .description('start Mandate (embedded store in --data unless MANDATE_DATABASE_URL is set)')
    .option('--port <port>', 'port to listen on (default 7400)')
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .option('--data <dir>', 'data directory for the embedded store (default ./.mandate)')
    .option('--config <file>', 'JSON configuration file')
    .option('--demo', 'demo mode: generate secrets, seed an owner, agents and policies, print where to look')
    .option('--dev', 'development mode: generated secrets, http public URL allowed')
    .option('--policies <file>', 'Cedar policy file to activate at start (a new version unless it is the active one)')
    .option('--entities <file>', 'Cedar entities JSON to import at start (replacing earlier imports)')
    .option('--force-policies', "activate --policies even if it does not validate against Mandate's schema (an application's own entity types; audited as forced)")
    .action(async (o: { port?: string; host?: string; data?: string; config?: string; demo?: boolean; dev?: boolean; policies?: string; entities?: string; forcePolicies?: boolean }) => {
      const file = o.config ?? process.env.MANDATE_CONFIG;
      const flags: ConfigInput = {
        ...(o.port !== undefined && { port: Number(o.port) }),
        ...(o.host !== undefined && { host: o.host }),
        ...(o.data !== undefined && { dataDir: o.data }),
        ...(o.demo && { mode: 'demo' as const }),
        ...(o.dev && { mode: 'dev' as const }),
      };
      const config = loadConfig(file ? configFromFile(file) : {}, configFromEnvironment(), flags);
      const server = await startServer(config);
      const { logger } = server.services;
      try {
        await loadPdpFiles(server.services, o.policies, o.entities, o.forcePolicies === true);
      } catch (error) {
        // A file that is refused (syntax, POLICY_INVALID) must not leave a server running without it.
        await server.close();
        throw error;
      }
      const shutdown = async (signal: string) => {
        logger.info({ signal }, 'shutting down');
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      if (config.mode === 'demo') {
        const seeded = await seedDemo(server.services, demoSeeders);
        printDemoBanner(config.publicUrl, config.adminPort === undefined ? config.publicUrl : server.adminUrl, config.adminToken, config.dataDir, seeded, config.scimToken);
      } else {
        logger.info({ url: config.publicUrl, ...(config.adminPort !== undefined && { adminUrl: server.adminUrl }), store: config.databaseUrl ? 'postgres' : 'sqlite' }, 'Mandate listening');
      }
    });
}

/** `--policies` / `--entities`: start a PDP with these files (applied through the audited paths). */
async function loadPdpFiles(services: Services, policiesFile: string | undefined, entitiesFile: string | undefined, force: boolean): Promise<void> {
  if (entitiesFile) {
    const entities = JSON.parse(readFileSync(entitiesFile, 'utf8')) as unknown[];
    await services.pdp.importEntities(entities, 'system:serve', { replace: true });
  }
  if (policiesFile) {
    const cedar = readFileSync(policiesFile, 'utf8');
    const active = await services.pdp.source();
    if (active?.cedar !== cedar) await services.pdp.apply(cedar, { note: `serve --policies ${policiesFile}`, force }, 'system:serve');
  }
}

function printDemoBanner(url: string, adminUrl: string, token: string, dataDir: string, seeded: Awaited<ReturnType<typeof seedDemo>>, scimToken: string | undefined): void {
  const lines = [
    '',
    '  Mandate is running (demo mode, embedded store)',
    '',
    `  API            ${adminUrl}/api/v1   (OpenAPI: ${adminUrl}/api/v1/openapi.json)`,
    `  Health         ${url}/healthz`,
    `  Admin token    ${token}`,
    `  AuthZEN PDP    ${url}/access/v1/evaluation   (metadata: ${url}/.well-known/authzen-configuration)`,
    `  OAuth issuer   ${url}   (${url}/.well-known/oauth-authorization-server)`,
    ...(scimToken ? [`  SCIM 2.0       ${url}/scim/v2   (bearer ${scimToken})`] : []),
    `  Data           ${dataDir}`,
    '',
    '  Try:',
    `    export MANDATE_URL=${adminUrl} MANDATE_ADMIN_TOKEN=${token}`,
    '    npx mandate agent list',
    `    curl -H "Authorization: Bearer $MANDATE_ADMIN_TOKEN" ${adminUrl}/api/v1/findings`,
    '    npx mandate audit verify --data ' + dataDir,
    '',
  ];
  if (seeded) {
    lines.push(`  Seeded: owner ${seeded.owner.email} (${seeded.owner.id}), manager ${seeded.manager.email}, agents ${seeded.agents.map((a) => `${a.name} (${a.id})`).join(', ')}`);
    for (const note of seeded.notes) lines.push(`  ${note}`);
  } else {
    lines.push('  (store already seeded: reusing it)');
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);
}
