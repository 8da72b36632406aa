import type { ApprovalRule } from './types.ts';

/**
 * Where a group decides who gets access: the approval-rule stages that name it, and the MCP gateway's
 * approver group. Changing such a group's members changes who can approve, so it is not like any other
 * group change (see `scimManagesApproverGroups`).
 */
export async function approverGroupUses(groupId: string, sources: { rules(): Promise<ApprovalRule[]>; gatewayApproverGroup(): string | null }): Promise<string[]> {
  const uses: string[] = [];
  if (sources.gatewayApproverGroup() === groupId) uses.push('the MCP gateway approver group');
  for (const rule of await sources.rules()) {
    rule.stages.forEach((stage, i) => {
      if (stage.approvers.some((a) => a.kind === 'group' && a.id === groupId)) uses.push(`approval rule ${rule.id} (${rule.pattern}), stage ${i + 1}`);
    });
  }
  return uses;
}
