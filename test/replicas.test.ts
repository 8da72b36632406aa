import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'openid-client';
import { startReplicas, type Replicas } from './support/replicas.ts';

/** Polls a condition (bounded) instead of sleeping for a guessed time. */
async function until(condition: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('three replicas on one PostgreSQL', () => {
  let replicas: Replicas;
  let agentId: string;
  let token: string;
  let config: oauth.Configuration;

  beforeAll(async () => {
    replicas = await startReplicas(3);
    const owner = (await (await replicas.api(0, 'POST', '/api/v1/humans', { email: 'owner@example.com', displayName: 'Owner', department: 'eng' })).json()) as { id: string };
    agentId = ((await (await replicas.api(1, 'POST', '/api/v1/agents', { name: 'fleet-agent', ownerId: owner.id, modelProvider: 'acme', model: 'acme-1' })).json()) as { id: string }).id;
    expect((await replicas.api(2, 'PUT', '/api/v1/policies', { cedar: 'permit (principal is Agent, action, resource) when { principal.status == "active" };' })).status).toBe(200);
    const client = (await (await replicas.api(0, 'POST', `/api/v1/agents/${agentId}/clients`, { auth: 'client_secret_basic' })).json()) as { client_id: string; client_secret: string };
    // The real OAuth client, against replica 0's token endpoint (the issuer is the shared public URL).
    config = new oauth.Configuration({ issuer: replicas.publicUrl, token_endpoint: `${replicas.servers[0]!.url}/oauth/token` }, client.client_id, {}, oauth.ClientSecretBasic(client.client_secret));
    oauth.allowInsecureRequests(config);
    token = (await oauth.clientCredentialsGrant(config)).access_token;
  });
  afterAll(() => replicas.stop());

  const decision = async (replica: number) =>
    ((await (await replicas.api(replica, 'POST', '/api/v1/decisions', { principal: { type: 'Agent', id: agentId }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: 'srv/t' } })).json()) as { decision: string }).decision;
  const tokenAccepted = async (replica: number) => {
    try {
      await replicas.servers[replica]!.services.oauth.verifyAccessToken({ authorization: `Bearer ${token}`, dpop: undefined, method: 'GET', url: replicas.publicUrl }, { audience: replicas.publicUrl });
      return true;
    } catch {
      return false;
    }
  };

  it('every replica sees the same registry, policies and tokens', async () => {
    for (const replica of [0, 1, 2]) {
      expect(await decision(replica)).toBe('allow');
      expect(await tokenAccepted(replica)).toBe(true);
    }
  });

  it('a suspension made through one replica denies on the other two (decisions and tokens); a resume restores decisions, but only new tokens', async () => {
    expect((await replicas.api(0, 'POST', `/api/v1/agents/${agentId}/suspend`, { reason: 'kill switch' })).status).toBe(200);
    for (const replica of [1, 2]) {
      await until(async () => (await decision(replica)) === 'deny', `replica ${replica} to deny`);
      await until(async () => !(await tokenAccepted(replica)), `replica ${replica} to refuse the token`);
    }
    expect((await replicas.api(2, 'POST', `/api/v1/agents/${agentId}/resume`)).status).toBe(200);
    for (const replica of [0, 1]) await until(async () => (await decision(replica)) === 'allow', `replica ${replica} to allow again`);
    // The token from before the suspension stays dead on every replica; the agent gets a new one.
    for (const replica of [0, 1, 2]) expect(await tokenAccepted(replica)).toBe(false);
    token = (await oauth.clientCredentialsGrant(config)).access_token;
    for (const replica of [0, 1, 2]) await until(() => tokenAccepted(replica), `replica ${replica} to accept the new token`);
  });

  it('the audit chain stays one line across replicas', async () => {
    await Promise.all(replicas.servers.map((s, i) => Promise.all(Array.from({ length: 30 }, (_, n) => s.services.audit.append({ actor: `replica:${i}`, action: 'test', outcome: 'success', details: { n } })))));
    const result = (await (await replicas.api(1, 'GET', '/api/v1/audit/verify')).json()) as { ok: boolean; events: number };
    expect(result.ok).toBe(true);
    expect(result.events).toBeGreaterThan(90);
  });

  it('two replicas importing halves of a cycle at the same moment: one import is refused, nothing cyclic is stored', async () => {
    const halves = [
      [{ uid: { type: 'Ring', id: 'a' }, attrs: {}, parents: [{ type: 'Ring', id: 'b' }] }],
      [{ uid: { type: 'Ring', id: 'b' }, attrs: {}, parents: [{ type: 'Ring', id: 'a' }] }],
    ];
    // Each passes its check before its transaction; the check under the import lock decides.
    const answers = await Promise.all(halves.map((half, i) => replicas.api(i, 'POST', '/api/v1/entities', half)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    const stored = await replicas.servers[0]!.services.store.db.selectFrom('policy_entities').select('id').where('type', '=', 'Ring').execute();
    expect(stored).toHaveLength(1);
    // Every replica still loads its entities (a stored cycle made every reload fail).
    for (const replica of [0, 1, 2]) expect((await replicas.api(replica, 'POST', '/api/v1/entities', [{ uid: { type: 'Ring', id: 'c' }, attrs: {}, parents: [] }])).status).toBe(200);
  });
});

