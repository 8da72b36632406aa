import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { MandateError } from '../core/errors.ts';

export interface DiscoveredTool {
  name: string;
  description: string | null;
  inputSchema: unknown;
}

export type DiscoveryTarget =
  | { transport: 'http'; url: string; headers: Record<string, string> }
  | { transport: 'stdio'; command: string; args: string[]; env: Record<string, string> };

/** Connects to an upstream as an MCP client (with the injected credential) and lists every tool, following cursors. */
export async function discoverTools(target: DiscoveryTarget, timeoutMs = 15_000): Promise<DiscoveredTool[]> {
  return withClient(target, timeoutMs, 'tool', async (client) => {
    const tools: DiscoveredTool[] = [];
    if (!client.getServerCapabilities()?.tools) return tools;
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const result = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: timeoutMs });
      for (const tool of result.tools) tools.push({ name: tool.name, description: tool.description ?? null, inputSchema: tool.inputSchema });
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return tools;
  });
}

/** The names of every prompt the upstream lists (none when it has no prompts capability), following cursors. */
export async function discoverPrompts(target: DiscoveryTarget, timeoutMs = 15_000): Promise<string[]> {
  return withClient(target, timeoutMs, 'prompt', async (client) => {
    const names: string[] = [];
    if (!client.getServerCapabilities()?.prompts) return names;
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const result = await client.listPrompts(cursor === undefined ? {} : { cursor }, { timeout: timeoutMs });
      for (const prompt of result.prompts) names.push(prompt.name);
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    return names;
  });
}

async function withClient<T>(target: DiscoveryTarget, timeoutMs: number, what: string, use: (client: Client) => Promise<T>): Promise<T> {
  const transport: Transport =
    target.transport === 'http'
      ? new StreamableHTTPClientTransport(new URL(target.url), { requestInit: { headers: target.headers } })
      : new StdioClientTransport({ command: target.command, args: target.args, env: { ...getDefaultEnvironment(), ...target.env }, stderr: 'ignore' });
  // Declared like a capable agent: upstreams offer some tools only to clients that can serve them (a
  // sampling or elicitation tool), and the gateway forwards calls only to tools it has discovered.
  const client = new Client({ name: 'mandate-gateway-discovery', version: '1' }, { capabilities: { sampling: {}, elicitation: {}, roots: {} } });
  try {
    await client.connect(transport, { timeout: timeoutMs });
    return await use(client);
  } catch (error) {
    throw new MandateError('GATEWAY_DISCOVERY_FAILED', `${what} discovery failed: ${(error as Error).message}`, 502);
  } finally {
    await client.close().catch(() => undefined);
  }
}
