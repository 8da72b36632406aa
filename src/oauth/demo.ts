import type { OAuthService } from './service.ts';

/**
 * Demo data for `mandate serve --demo`: a client for the first demo agent (its secret printed once, as
 * the admin API would show it) and the curl line that gets a token with it.
 */
export async function seedOAuthDemo(services: { oauth: OAuthService; config: { publicUrl: string } }, seeded: { agents: { id: string; name: string }[]; notes: string[] }): Promise<void> {
  const agent = seeded.agents[0];
  if (!agent) return;
  const client = await services.oauth.clients.create('agent', agent.id, { auth: 'client_secret_basic', scopes: ['tickets:read', 'tickets:write'] }, 'system:demo');
  const url = services.config.publicUrl;
  seeded.notes.push(
    `OAuth client for ${agent.name}: client_id ${client.client_id}  client_secret ${client.client_secret} (shown once)`,
    `  token:  curl -s -u '${client.client_id}:${client.client_secret}' -d grant_type=client_credentials -d scope=tickets:read -d resource=${url} ${url}/oauth/token`,
    `  check:  curl -s -H "Authorization: Bearer <access_token>" ${url}/oauth/token-info`,
  );
}
