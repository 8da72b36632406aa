/** The MCP gateway: the policy enforcement point in front of upstream MCP servers. See docs/gateway.md. */
export { Gateway, type GatewayDependencies } from './gateway.ts';
export { oauthAuthenticator } from './authenticator.ts';
export { GatewayProxy, type AgentAuthenticator, type ProxyRequest, problemResponse } from './proxy.ts';
export { StreamedAnswer, STALLED_READER_MS, asResponse, type ProxyAnswer } from './streamed-answer.ts';
export { UpstreamRegistry, GATEWAY_REGISTRY_CHANGED, SERVER_NAME, LABEL, type ServerInput } from './registry.ts';
export { ApprovalService, GATEWAY_APPROVAL_DECIDED, APPROVAL_WEBHOOK_SECRET, type Approval, type ApprovalStatus } from './approvals.ts';
export { KillSwitch, type KillSelector } from './kill-switch.ts';
export { LimitService, type AgentLimits } from './limits.ts';
export { SettingsStore, gatewaySettingsSchema, gatewaySettingsPatch, type GatewaySettings } from './settings.ts';
export { POLICY_TEMPLATES, type PolicyTemplate } from './templates.ts';
export { redact, argumentDigest } from './redact.ts';
export { sseTransform } from './sse.ts';
export { parseBody } from './jsonrpc.ts';
export { toCedarRecord, buildContext, decideCall, mayList, type PolicyPoint } from './decide.ts';
export { hostAllowed, originAllowed } from './origin.ts';
export { startDemoUpstream, buildDemoServer, DEMO_TOOLS, type DemoUpstream } from './demo-upstream.ts';
export { seedGatewayDemo } from './demo.ts';
export type { UpstreamServer, UpstreamTool, UpstreamCredential, GatewayCaller, McpAction, ServerSettings, ToolSettings } from './types.ts';
