import pino, { type Logger } from 'pino';
import { AuditLog, AuditStreamer } from '../audit/index.ts';
import type { Config } from '../core/config.ts';
import { Gateway, oauthAuthenticator } from '../gateway/index.ts';
import { Governance } from '../governance/index.ts';
import { IdentityService } from '../identity/index.ts';
import { Scheduler } from '../jobs/index.ts';
import { KeyRing } from '../keys/index.ts';
import { OAuthService } from '../oauth/index.ts';
import { PdpService } from '../pdp/index.ts';
import { Store } from '../store/index.ts';
import { Vault } from '../vault/index.ts';

/** Everything a request handler or job may use, built once per process. */
export interface Services {
  config: Config;
  logger: Logger;
  store: Store;
  keys: KeyRing;
  audit: AuditLog;
  identity: IdentityService;
  /** OAuth authorization server and access-token verification for resource servers. */
  oauth: OAuthService;
  /** Policy decision point: active Cedar policy set, entities, decision log. */
  pdp: PdpService;
  /** Periodic jobs, each run by one replica at a time. Domains add jobs before `start()`. */
  scheduler: Scheduler;
  /** Audit streaming to webhooks. */
  auditStreams: AuditStreamer;
  /** Grants, just-in-time access, separation of duties, certifications (docs/governance.md). */
  governance: Governance;
  /** Encrypted secrets (envelope encryption), e.g. upstream MCP credentials. */
  vault: Vault;
  /** MCP gateway: upstream registry, /mcp proxy, approvals, kill switch (docs/gateway.md). */
  gateway: Gateway;
  /** Starts background work (jobs, streams); called once the routes are mounted. */
  start(): Promise<void>;
  /** Runs on close, last registered first (domains register their own cleanup). */
  onClose: (cleanup: () => Promise<void> | void) => void;
  close(): Promise<void>;
}

export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    // Secrets never reach a log line, whatever a handler passes in.
    redact: {
      paths: ['*.authorization', '*.Authorization', '*.password', '*.secret', '*.client_secret', '*.token', '*.adminToken', '*.masterKey', 'req.headers.authorization', 'req.headers.cookie'],
      censor: '[redacted]',
    },
  });
}

export async function createServices(config: Config, logger = createLogger(config.logLevel)): Promise<Services> {
  const store = await Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, schema: config.databaseSchema, listen: true, logger });
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    await store.migrate();
    const keys = new KeyRing(store, config.masterKey);
    const audit = new AuditLog(store, keys, { checkpointEvery: config.auditCheckpointEvery });
    await audit.init();
    const identity = new IdentityService(store, audit, { inactivityDays: config.inactivityDays });
    const oauth = new OAuthService({ config, store, audit, identity, logger });
    await oauth.init();
    cleanups.push(() => oauth.close());
    const pdp = new PdpService(store, audit, logger);
    await pdp.init();
    const scheduler = new Scheduler(store, logger);
    scheduler.add({ name: 'identity.detect', everyMs: 60 * 60_000, run: () => identity.detect('system:scheduler') });
    const governance = new Governance(store, audit, { masterKey: config.masterKey, maxJitSeconds: config.jitMaxSeconds, allowHttpWebhooks: config.mode !== 'production' });
    await governance.start();
    cleanups.push(() => governance.stop());
    // Entitlements reach Cedar decisions: an `entitlements` attribute and Role parents on each principal.
    governance.onEntitlementsChanged((id, type) => pdp.refreshPrincipal(type, id));
    await pdp.addPrincipalDecorator(governance.principalDecorator());
    governance.registerJobs(scheduler);
    const auditStreams = new AuditStreamer(store, audit, logger, { masterKey: config.masterKey, allowHttp: config.mode !== 'production', maxBackoffMs: config.auditStreamMaxBackoffMs });
    const vault = new Vault(store, audit, config.masterKey);
    const gateway = new Gateway({ store, audit, identity, vault, pdp, logger, publicUrl: () => config.publicUrl, authenticate: oauthAuthenticator(oauth), sessionSod: (used, tool) => governance.sod.sessionConflict(used, tool) });
    await gateway.init();
    cleanups.push(() => gateway.close());
    let closed = false;
    return {
      config,
      logger,
      store,
      keys,
      audit,
      identity,
      oauth,
      pdp,
      scheduler,
      auditStreams,
      governance,
      vault,
      gateway,
      async start() {
        scheduler.start();
        await auditStreams.start();
      },
      onClose: (cleanup) => cleanups.push(cleanup),
      async close() {
        if (closed) return;
        closed = true;
        await auditStreams.stop();
        await scheduler.stop();
        for (const cleanup of cleanups.reverse()) await cleanup();
        await audit.flush();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
