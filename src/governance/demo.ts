import type { Governance } from './governance.ts';

/**
 * Demo data for governance: an approval rule for the demo MCP server's tools (the owner approves, at most
 * an hour), a separation-of-duties rule at grant time and one per session, a standing role for the support
 * agent, and a pending just-in-time request waiting for the owner.
 */
export async function seedGovernanceDemo(
  services: { governance: Governance; config: { publicUrl: string } },
  seeded: { owner: { id: string }; manager: { id: string }; agents: { id: string; name: string }[]; notes: string[] },
): Promise<void> {
  const actor = 'system:demo';
  const { governance } = services;
  await governance.requests.createRule({ pattern: 'tool:demo/*', stages: [{ approvers: [{ kind: 'owner' }], required: 1 }], maxDurationSeconds: 3600 }, actor);
  await governance.requests.createRule({ pattern: 'role:payments-*', stages: [{ approvers: [{ kind: 'owner' }], required: 1 }, { approvers: [{ kind: 'manager' }], required: 1 }], maxDurationSeconds: 1800 }, actor);
  await governance.sod.createRule({ name: 'payments maker-checker', entitlements: ['role:payments-create', 'role:payments-approve'], countDelegation: true }, actor);
  await governance.sod.createRule({ name: 'no crm then mail in one session', pairs: [['tool:demo/crm_lookup', 'tool:demo/send_email']], enforce: 'session' }, actor);
  const support = seeded.agents.find((a) => a.name === 'support-bot') ?? seeded.agents[0];
  const release = seeded.agents.find((a) => a.name === 'release-agent') ?? seeded.agents[1];
  if (support) await governance.grants.grant({ principalId: support.id, entitlement: 'role:support', reason: 'demo: answers tickets' }, actor);
  if (release) {
    const request = await governance.requests.create({ principalId: release.id, entitlement: 'tool:demo/delete_record', durationSeconds: 900, justification: 'demo: clean up a test record' }, actor);
    const url = services.config.publicUrl;
    seeded.notes.push(
      `Governance (docs/governance.md): a pending just-in-time request ${request.id} for ${release.name}; the owner approves it with`,
      `  curl -s -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' -d '{"approverId":"${seeded.owner.id}"}' ${url}/api/v1/access-requests/${request.id}/approve`,
      `  SoD rules: GET ${url}/api/v1/sod/rules; entitlements: GET ${url}/api/v1/principals/<id>/entitlements`,
    );
  }
}
