import { Command } from 'commander';
import { MandateError } from '../../core/errors.ts';
import { apiTarget, callApi } from '../http-client.ts';
import { print } from '../output.ts';
import { remote, type RemoteOptions } from '../remote.ts';


/** `mandate kill`: the kill switch, on every replica at once. */
export function killCommand(): Command {
  return remote(
    new Command('kill')
      .description('kill switch: suspend agents (one, an owner\'s, a tag\'s, a model\'s, or all); their MCP sessions close and calls stop everywhere')
      .option('--agent <id>', 'one agent or workload')
      .option('--owner <humanId>', 'every agent the human owns')
      .option('--tag <tag>', 'every agent with this tag')
      .option('--provider <provider>', 'every agent of this model provider')
      .option('--model <model>', 'with --provider: only this model')
      .option('--all', 'everything')
      .option('--reason <text>', 'why (recorded in the audit chain)'),
  ).action(async (o: RemoteOptions & { agent?: string; owner?: string; tag?: string; provider?: string; model?: string; all?: boolean; reason?: string }) => {
    const selectors = [o.agent, o.owner, o.tag, o.provider, o.all].filter((v) => v !== undefined);
    if (selectors.length !== 1) throw new MandateError('CLI_USAGE', 'name exactly one of --agent, --owner, --tag, --provider or --all');
    if (o.model !== undefined && o.provider === undefined) throw new MandateError('CLI_USAGE', '--model needs --provider');
    const selector = o.agent ? { agentId: o.agent } : o.owner ? { ownerId: o.owner } : o.tag ? { tag: o.tag } : o.provider ? { modelProvider: o.provider, ...(o.model && { model: o.model }) } : { all: true as const };
    const result = (await callApi(apiTarget(o), 'POST', '/api/v1/mcp/kill', { ...selector, ...(o.reason && { reason: o.reason }) })) as { suspended: string[] };
    if (o.json) print(result, true);
    else process.stdout.write(result.suspended.length > 0 ? `suspended ${result.suspended.length}: ${result.suspended.join(', ')}\n` : 'nothing to suspend (no active match)\n');
  });
}

/** `mandate mcp ...`: upstream servers, tool labels and approvals. */
export function mcpCommand(): Command {
  const mcp = new Command('mcp').description('MCP gateway: upstream servers, tool labels, approvals');
  remote(mcp.command('add').description('register an upstream MCP server (--upstream URL for Streamable HTTP, or --command for stdio)').argument('<name>').option('--upstream <url>', 'Streamable HTTP URL of the upstream').option('--command <command>').option('--arg <arg...>', 'stdio arguments')).action(
    async (name: string, o: RemoteOptions & { upstream?: string; command?: string; arg?: string[] }) => {
      if ((o.upstream === undefined) === (o.command === undefined)) throw new MandateError('CLI_USAGE', 'give either --upstream or --command');
      const body = o.upstream ? { name, url: o.upstream } : { name, command: o.command, args: o.arg ?? [] };
      const created = (await callApi(apiTarget(o), 'POST', '/api/v1/mcp/servers', body)) as { server: Record<string, unknown>; tools: unknown[] };
      print(o.json ? created : { ...created.server, tools: created.tools.length }, o.json, ['name', 'transport', 'tools', 'discoveryError']);
    },
  );
  remote(mcp.command('list').description('list upstream MCP servers')).action(async (o: RemoteOptions) => {
    const page = (await callApi(apiTarget(o), 'GET', '/api/v1/mcp/servers')) as { items: unknown[] };
    print(page.items, o.json, ['name', 'transport', 'url', 'command', 'discoveredAt']);
  });
  remote(mcp.command('tools').description('a server\'s tools and labels').argument('<server>')).action(async (server: string, o: RemoteOptions) => {
    const page = (await callApi(apiTarget(o), 'GET', `/api/v1/mcp/servers/${encodeURIComponent(server)}/tools`)) as { items: { name: string; labels: string[] }[] };
    print(o.json ? page.items : page.items.map((t) => ({ ...t, labels: t.labels.join(',') })), o.json, ['name', 'labels']);
  });
  remote(mcp.command('label').description('set a tool\'s labels').argument('<server>').argument('<tool>').argument('<labels...>')).action(async (server: string, tool: string, labels: string[], o: RemoteOptions) => {
    print(await callApi(apiTarget(o), 'PATCH', `/api/v1/mcp/servers/${encodeURIComponent(server)}/tools/${encodeURIComponent(tool)}`, { labels }), o.json, ['server', 'name', 'labels']);
  });
  remote(mcp.command('approvals').description('approval requests (pending by default)').option('--status <status>', 'pending, approved, denied, expired, cancelled', 'pending')).action(async (o: RemoteOptions & { status: string }) => {
    const page = (await callApi(apiTarget(o), 'GET', `/api/v1/mcp/approvals?status=${encodeURIComponent(o.status)}`)) as { items: unknown[] };
    print(page.items, o.json, ['id', 'status', 'agentId', 'target', 'createdAt', 'expiresAt']);
  });
  for (const verdict of ['approve', 'deny'] as const) {
    remote(mcp.command(verdict).description(`${verdict} a waiting call`).argument('<approvalId>').option('--reason <text>')).action(async (id: string, o: RemoteOptions & { reason?: string }) => {
      print(await callApi(apiTarget(o), 'POST', `/api/v1/mcp/approvals/${encodeURIComponent(id)}/${verdict}`, o.reason ? { reason: o.reason } : {}), o.json, ['id', 'status', 'decidedBy']);
    });
  }
  return mcp;
}
