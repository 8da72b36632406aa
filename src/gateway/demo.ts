import { fileURLToPath } from 'node:url';
import type { Gateway } from './gateway.ts';
import { DEMO_TOOLS } from './demo-upstream.ts';
import { POLICY_TEMPLATES } from './templates.ts';

/**
 * Demo data for the gateway: the demo MCP server (stdio, started by Mandate per session, so it survives
 * restarts) registered as `demo` with labelled tools, and policies that let the demo agents use it with
 * the toxic-flow forbids and owner approval for destructive tools.
 */
export async function seedGatewayDemo(
  services: { gateway: Gateway; pdp: { source(): Promise<{ cedar: string } | undefined>; apply(cedar: string, options: { note?: string }, actor: string): Promise<unknown> }; config: { publicUrl: string } },
  seeded: { agents: { id: string; name: string }[]; notes: string[] },
): Promise<void> {
  const actor = 'system:demo';
  const script = fileURLToPath(new URL('./demo-stdio.ts', import.meta.url));
  await services.gateway.registry.create({ name: 'demo', command: process.execPath, args: [script] }, actor);
  for (const [tool, labels] of Object.entries(DEMO_TOOLS)) {
    if (labels.length > 0) await services.gateway.registry.setToolLabels('demo', tool, { labels }, actor).catch(() => undefined);
  }
  const template = (id: string) => POLICY_TEMPLATES.find((t) => t.id === id)!.cedar;
  const gatewayPolicies = [
    '// MCP gateway demo (docs/gateway.md): demo agents may use the demo server…',
    'permit (principal is Agent, action == Action::"tools/call", resource in McpServer::"demo") when { principal.status == "active" };',
    '// …but never read private data and then send it out, or act destructively after reading untrusted content…',
    template('block-exfiltration'),
    template('block-untrusted-then-destructive'),
    '// …and destructive tools wait for the owner.',
    template('approve-destructive'),
  ].join('\n');
  const current = await services.pdp.source();
  await services.pdp.apply(current ? `${current.cedar}\n\n${gatewayPolicies}\n` : `${gatewayPolicies}\n`, { note: 'MCP gateway demo policies' }, actor);
  const url = services.config.publicUrl;
  seeded.notes.push(
    `MCP gateway: ${url}/mcp/demo (demo MCP server over stdio; tools crm_lookup=private_data, send_email=external_sink, fetch_url=untrusted_content, delete_record=destructive)`,
    `  token for it: curl -s -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials -d resource=${url}/mcp/demo ${url}/oauth/token`,
    '  then point any MCP client (Streamable HTTP) at it with "Authorization: Bearer <access_token>"; pending approvals: npx mandate mcp approvals',
  );
}
