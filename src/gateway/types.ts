/** An upstream MCP server as the registry knows it (never with its credentials). */
export interface UpstreamServer {
  name: string;
  transport: 'http' | 'stdio';
  url: string | null;
  command: string | null;
  args: string[];
  /** Names of the environment variables given to a stdio child (values stay in the vault). */
  envNames: string[];
  credential: { kind: CredentialKind; configured: true } | null;
  /** Labels of the server's resources and prompts (tools carry their own). */
  labels: string[];
  settings: ServerSettings;
  discoveredAt: string | null;
  discoveryError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ServerSettings {
  /** Scopes an access token must carry for this server (403 insufficient_scope otherwise). */
  requiredScopes?: string[] | undefined;
}

export interface ToolSettings {
  /** Free-form per-tool settings admins attach (e.g. a note, a rate hint); exposed to policies as `resource.settings`. */
  [key: string]: string | number | boolean;
}

export interface UpstreamTool {
  server: string;
  name: string;
  description: string | null;
  inputSchema: unknown;
  labels: string[];
  settings: ToolSettings;
  present: boolean;
  updatedAt: string;
}

export type CredentialKind = 'bearer' | 'header' | 'oauth_client_credentials';

/** Upstream credentials as admins give them; stored in the vault, never returned. */
export type UpstreamCredential =
  | { kind: 'bearer'; token: string }
  | { kind: 'header'; name: string; value: string }
  | { kind: 'oauth_client_credentials'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string | undefined; resource?: string | undefined };

/** Who is calling the gateway, from the verified access token. */
export interface GatewayCaller {
  /** The agent or workload presenting the token (the current actor). */
  identityId: string;
  clientId: string;
  /** The human the call is made for, when the token was delegated by one. */
  userId: string | null;
  /** RFC 8693 act chain, outermost (current actor) first. */
  chain: string[];
  scopes: string[];
  tokenId: string;
}

export type McpAction = 'tools/call' | 'resources/read' | 'prompts/get';

export const LABELS = ['private_data', 'untrusted_content', 'external_sink', 'destructive'] as const;
