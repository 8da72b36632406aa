/**
 * The demo MCP server over stdio: `node src/gateway/demo-stdio.ts`. The demo seeder registers it as a
 * stdio upstream, so Mandate starts it per session and the demo survives restarts.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { buildDemoServer } from './demo-upstream.ts';

await buildDemoServer().connect(new StdioServerTransport());
