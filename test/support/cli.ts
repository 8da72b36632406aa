import { execFile } from 'node:child_process';
import type { RunningServer } from '../../src/server/index.ts';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `mandate` CLI against a test server's store, as an operator would. Asynchronous on
 * purpose: the server lives in this process, and blocking the event loop (spawnSync) would stall it.
 */
export function runCli(server: RunningServer, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const { config } = server.services;
  const storeEnv = { MANDATE_DATA_DIR: config.dataDir, MANDATE_DATABASE_URL: config.databaseUrl ?? '', MANDATE_DATABASE_SCHEMA: config.databaseSchema ?? '' };
  return new Promise((resolve) => {
    execFile(process.execPath, ['src/cli/main.ts', ...args], { env: { ...process.env, ...storeEnv, ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error && typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : error ? null : 0;
      resolve({ status: code, stdout, stderr });
    });
  });
}
