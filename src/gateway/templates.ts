export interface PolicyTemplate {
  id: string;
  description: string;
  cedar: string;
}

/**
 * Shipped Cedar policies against the gateway vocabulary (docs/policies.md). The first two block the
 * classic toxic flows; forbids win over any permit, so adding them to a policy set is always safe.
 */
export const POLICY_TEMPLATES: PolicyTemplate[] = [
  {
    id: 'block-exfiltration',
    description: 'A session that has touched private data may not call an external sink (read the CRM, then send e-mail).',
    cedar: `@id("block-exfiltration")
forbid (principal, action == Action::"tools/call", resource)
when { resource has labels && resource.labels.contains("external_sink") && context.session.labels.contains("private_data") };`,
  },
  {
    id: 'block-untrusted-then-destructive',
    description: 'A session that has read untrusted content (web pages, e-mail, tickets) may not call a destructive tool.',
    cedar: `@id("block-untrusted-then-destructive")
forbid (principal, action == Action::"tools/call", resource)
when { resource has labels && resource.labels.contains("destructive") && context.session.labels.contains("untrusted_content") };`,
  },
  {
    id: 'approve-destructive',
    description: 'Destructive tools are allowed to active agents only after their owner approves each call.',
    cedar: `@id("approve-destructive")
@approval("owner")
permit (principal is Agent, action == Action::"tools/call", resource)
when { principal.status == "active" && resource has labels && resource.labels.contains("destructive") };`,
  },
  {
    id: 'permit-unlabelled-tools',
    description: 'Active agents may call tools that carry no risk label.',
    cedar: `@id("permit-unlabelled-tools")
permit (principal is Agent, action == Action::"tools/call", resource is Tool)
when { principal.status == "active" && resource.labels.isEmpty() };`,
  },
  {
    id: 'permit-owner-department',
    description: 'Agents whose owner is in the engineering department may call the tools of one server (edit the department and server).',
    cedar: `@id("permit-owner-department")
permit (principal is Agent, action == Action::"tools/call", resource in McpServer::"everything")
when { principal.owner has department && principal.owner.department == "eng" };`,
  },
];
