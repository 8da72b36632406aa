import { afterAll, beforeAll } from 'vitest';
import { loadConfig, type ConfigInput } from '../../src/core/config.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { freshDatabase, type Backend } from './backends.ts';

export interface TestServer extends RunningServer {
  adminToken: string;
  /** fetch against the server with the admin token; JSON bodies are encoded. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

/** Starts the real server (port 0, fresh database) once per test file. */
export async function startTestServer(backend: Backend = 'sqlite', overrides: ConfigInput = {}): Promise<TestServer> {
  const db = await freshDatabase(backend);
  const config = loadConfig({
    mode: 'dev',
    port: 0,
    logLevel: 'silent',
    dataDir: db.options.dataDir,
    ...(db.options.databaseUrl && { databaseUrl: db.options.databaseUrl }),
    ...(db.options.schema && { databaseSchema: db.options.schema }),
    ...overrides,
  });
  const server = await startServer(config);
  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.adminUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${config.adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return {
    ...server,
    adminToken: config.adminToken,
    api,
    async stop() {
      await server.close();
      await db.cleanup();
    },
  };
}

/**
 * One real server for the whole test file, started before its tests and stopped after them: returns a
 * getter, since the server exists only once `beforeAll` has run.
 */
export function serverForFile(backend: Backend = 'sqlite', overrides: ConfigInput = {}): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(backend, overrides);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('the test server is not running');
    return server;
  };
}
