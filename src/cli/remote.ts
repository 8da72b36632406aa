import type { Command } from 'commander';

/** Options of every command that talks to a running server. */
export interface RemoteOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

/** Adds `--url`, `--token` and `--json` to a command that calls the admin API. */
export function remote(command: Command): Command {
  return command
    .option('--url <url>', 'Mandate base URL (default $MANDATE_URL or http://127.0.0.1:7400)')
    .option('--token <token>', 'admin token (default $MANDATE_ADMIN_TOKEN)')
    .option('--json', 'print JSON');
}
