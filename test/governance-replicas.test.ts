import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplicas, type Replicas } from './support/replicas.ts';

/** Polls a condition (bounded) instead of sleeping for a guessed time. */
async function until(condition: () => Promise<boolean>, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Three replicas on one PostgreSQL: a just-in-time approval and an early revoke made through one replica
 * change Cedar decisions on the other two as soon as the change event arrives.
 */
describe('governance across three replicas (PostgreSQL)', () => {
  let replicas: Replicas;
  beforeAll(async () => {
    replicas = await startReplicas(3);
  }, 60_000);
  afterAll(async () => {
    await replicas?.stop();
  });

  const json = async <T>(response: Response, status: number): Promise<T> => {
    const body = (await response.json()) as T;
    if (response.status !== status) throw new Error(`expected ${status}, got ${response.status}: ${JSON.stringify(body)}`);
    return body;
  };

  it('a JIT approval on replica 0 allows on replicas 1 and 2; a revoke on replica 2 denies on 0 and 1', async () => {
    const owner = await json<{ id: string }>(await replicas.api(0, 'POST', '/api/v1/humans', { email: 'rep-owner@example.com', displayName: 'Owner' }), 201);
    const agent = await json<{ id: string }>(await replicas.api(0, 'POST', '/api/v1/agents', { name: 'rep-agent', ownerId: owner.id }), 201);
    await json(await replicas.api(1, 'PUT', '/api/v1/policies', { cedar: 'permit (principal, action == Action::"tools/call", resource == Tool::"erp/post") when { principal.entitlements.contains("tool:erp/post") };' }), 200);
    const decide = async (replica: number) =>
      (await json<{ decision: string }>(await replicas.api(replica, 'POST', '/api/v1/decisions', { principal: { type: 'Agent', id: agent.id }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: 'erp/post' } }), 200)).decision;
    await until(async () => (await decide(0)) === 'deny' && (await decide(2)) === 'deny', 'policy on every replica');

    const latencies: number[] = [];
    const approvals: number[] = [];
    for (let round = 0; round < 5; round++) {
      const request = await json<{ id: string }>(await replicas.api(0, 'POST', '/api/v1/access-requests', { principalId: agent.id, entitlement: 'tool:erp/post', durationSeconds: 600, justification: `close the books ${round}` }), 201);
      const started = performance.now();
      await json(await replicas.api(0, 'POST', `/api/v1/access-requests/${request.id}/approve`, { approverId: owner.id }), 200);
      approvals.push(performance.now() - started);
      expect(await decide(0)).toBe('allow');
      await until(async () => (await decide(1)) === 'allow' && (await decide(2)) === 'allow', 'allow on replicas 1 and 2');
      latencies.push(performance.now() - started);
      await json(await replicas.api(2, 'POST', `/api/v1/access-requests/${request.id}/revoke`, {}), 200);
      expect(await decide(2)).toBe('deny');
      await until(async () => (await decide(0)) === 'deny' && (await decide(1)) === 'deny', 'deny on replicas 0 and 1');
    }
    latencies.sort((a, b) => a - b);
    approvals.sort((a, b) => a - b);
    console.log(`approval request: median ${approvals[2]!.toFixed(1)} ms; approval sent → allow on the two others: median ${latencies[2]!.toFixed(1)} ms, max ${latencies[4]!.toFixed(1)} ms`);
  });
});
