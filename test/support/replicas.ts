import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/core/config.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { freshDatabase, type TestDatabase } from './backends.ts';

export interface Replicas {
  servers: RunningServer[];
  adminToken: string;
  publicUrl: string;
  api(replica: number, method: string, path: string, body?: unknown): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * N Mandate replicas on one PostgreSQL schema, sharing one public URL, admin token and master key, as
 * behind a load balancer.
 */
export async function startReplicas(count: number): Promise<Replicas> {
  const db: TestDatabase = await freshDatabase('postgres');
  const adminToken = `mdt_admin_${randomBytes(24).toString('base64url')}`;
  const publicUrl = 'http://mandate.localhost';
  const masterKey = randomBytes(32).toString('base64');
  const servers: RunningServer[] = [];
  for (let i = 0; i < count; i++) {
    const config = loadConfig({ mode: 'dev', port: 0, logLevel: 'silent', dataDir: db.options.dataDir, databaseUrl: db.options.databaseUrl!, databaseSchema: db.options.schema!, publicUrl, adminToken, masterKey });
    servers.push(await startServer(config));
  }
  return {
    servers,
    adminToken,
    publicUrl,
    api: (replica, method, path, body) =>
      fetch(`${servers[replica]!.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      }),
    async stop() {
      for (const server of servers) await server.close();
      await db.cleanup();
    },
  };
}
