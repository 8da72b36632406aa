import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { isMandateError, MandateError, toProblem } from '../core/errors.ts';
import { isTokenError, wwwAuthenticate, protectedResourceMetadataUrl } from '../oauth/index.ts';
import type { AgentDirectory } from './agents.ts';
import type { ApprovalService } from './approvals.ts';
import type { CallRecord, GatewayAuditor } from './auditor.ts';
import type { CredentialBroker } from './credentials.ts';
import { decideCall, mayList, type GatewayDecision, type PolicyPoint, type SessionView } from './decide.ts';
import { allowsBatches, isRequest, parseBody, rpcError, RPC_APPROVAL_DENIED, RPC_APPROVAL_TIMEOUT, RPC_CANCELLED, RPC_DENIED, RPC_RATE_LIMITED, RPC_UPSTREAM, type RpcId, type RpcMessage } from './jsonrpc.ts';
import type { LimitService } from './limits.ts';
import { hostAllowed, originAllowed, publicUrlOf } from './origin.ts';
import { argumentDigest, redact } from './redact.ts';
import type { PromptNames } from './prompt-names.ts';
import type { Rediscovery } from './rediscovery.ts';
import type { UpstreamRegistry } from './registry.ts';
import { GatewaySession, type SessionTable } from './sessions.ts';
import type { SettingsStore } from './settings.ts';
import { SseRewriter } from './sse.ts';
import type { GatewayCaller, McpAction, UpstreamServer } from './types.ts';
import { answerHeader, httpEndpoint, StdioBridge, type UpstreamAnswer, type UpstreamEndpoint } from './upstream.ts';
import { asResponse, StreamedAnswer, type ProxyAnswer } from './streamed-answer.ts';
import type { Readable } from 'node:stream';
import { linkedSignal } from './linked-signal.ts';

/**
 * What the proxy reads of an agent's request: a WHATWG Request has all of it, and so does the lean
 * adapter over Node's request that serves `/mcp` (src/server/mcp-listener.ts).
 */
export interface ProxyRequest {
  readonly method: string;
  /** The absolute URL the request was received at. */
  readonly url: string;
  readonly headers: { get(name: string): string | null };
  /** Aborted when the agent goes away before the answer is complete. */
  readonly signal: AbortSignal;
  text(): Promise<string>;
}

/** Verifies the agent's access token for one gateway resource; throws a TokenError (401/403) when it cannot. */
export type AgentAuthenticator = (
  request: { authorization: string | undefined; dpop: string | undefined; method: string; url: string; clientCertificate?: X509Certificate | undefined },
  options: { audience: string[]; requiredScopes: string[] },
) => Promise<GatewayCaller>;

export interface ProxyDependencies {
  publicUrl: () => string;
  registry: UpstreamRegistry;
  /** Lists a server's tools again (rate-limited, coalesced) when a call names one the registry does not know. */
  rediscovery: Pick<Rediscovery, 'refresh'>;
  /** The prompts each upstream lists: `prompts/get` is forwarded only for one of them. */
  prompts: Pick<PromptNames, 'known'>;
  sessions: SessionTable;
  pdp: PolicyPoint;
  authenticate: () => AgentAuthenticator;
  agents: AgentDirectory;
  approvals: ApprovalService;
  limits: LimitService;
  auditor: GatewayAuditor;
  credentials: CredentialBroker;
  settings: SettingsStore;
  logger: Logger;
  closeSession(session: GatewaySession, reason: string, notifyUpstream: boolean): Promise<void>;
  /** Per-session separation of duties (src/governance `sod.sessionConflict`): the rule calling `tool` would break, given the tools used. */
  sessionSod?: ((usedTools: Iterable<string>, tool: string) => { rule: string; a: string; b: string } | undefined) | undefined;
}

/** How often a call waiting for a human tells the agent it is still waiting. */
const APPROVAL_HEARTBEAT_MS = 15_000;

type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list';
const LISTS: Record<ListMethod, { key: string; action: McpAction; field: string }> = {
  'tools/list': { key: 'tools', action: 'tools/call', field: 'name' },
  'prompts/list': { key: 'prompts', action: 'prompts/get', field: 'name' },
  'resources/list': { key: 'resources', action: 'resources/read', field: 'uri' },
};
const isListMethod = (method: string): method is ListMethod => Object.hasOwn(LISTS, method);

// A subscription delivers a resource's updates, i.e. its content: it needs the same permission as reading it.
const DECIDED: Record<string, McpAction> = { 'tools/call': 'tools/call', 'resources/read': 'resources/read', 'resources/subscribe': 'resources/read', 'prompts/get': 'prompts/get' };

/**
 * The decision a message needs, if any. `completion/complete` (MCP "Completion") suggests values for a
 * prompt's or resource template's arguments, which can reveal what is behind them: it needs the right to
 * get that prompt (`ref/prompt`) or read that resource (`ref/resource`); any other `ref` is decided as a
 * prompt and refused for want of a name.
 */
function decidedAction(message: RpcMessage): McpAction | undefined {
  const method = message.method;
  if (method === undefined) return undefined;
  if (method === 'completion/complete') return (message.params?.ref as { type?: unknown } | undefined)?.type === 'ref/resource' ? 'resources/read' : 'prompts/get';
  return Object.hasOwn(DECIDED, method) ? DECIDED[method] : undefined;
}

/** What a decided message targets, and the arguments its policies see (none for reads and completions). */
function decidedTarget(action: McpAction, message: RpcMessage): { name: unknown; args: unknown } {
  const params = message.params ?? {};
  if (message.method === 'completion/complete') {
    const ref = params.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
    // Only the two kinds of reference MCP defines have a target: a name read from any other kind would be
    // decided as a prompt while an upstream that does not check the type might complete its `uri`.
    if (action === 'resources/read') return { name: ref?.uri, args: {} };
    return { name: ref?.type === 'ref/prompt' ? ref.name : undefined, args: {} };
  }
  return { name: action === 'resources/read' ? params.uri : params.name, args: action === 'resources/read' ? {} : (params.arguments ?? {}) };
}

/** Request headers the upstream may see. Everything else (Authorization, Cookie, DPoP, forwarding headers) stays here. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'mcp-protocol-version', 'last-event-id', 'user-agent'];
/** Response headers the agent must not get from the upstream. */
const DROPPED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'set-cookie', 'www-authenticate', 'mcp-session-id', 'content-encoding'];

interface Pending {
  id: RpcId;
  method: string;
  action?: McpAction;
  target?: string;
  record?: Omit<CallRecord, 'latencyMs'>;
  /** Where the durable decision record of `record` is in the chain, once written (its outcome links to it). */
  decisionSeq?: number;
  labels?: string[];
  /** Sees the upstream's answer to this request (the gateway learns the negotiated protocol version from `initialize`'s). */
  onAnswer?: (message: RpcMessage) => void;
}

/**
 * The MCP Streamable HTTP proxy (MCP 2025-06-18+ "Transports"): one instance serves every `/mcp/{server}`.
 * For each agent request it authenticates the token (the gateway is an OAuth resource server; the token
 * never goes upstream), binds the request to a mapped session, decides every tools/call, resources/read
 * and prompts/get before anything reaches the upstream, filters tools/list, and streams the upstream's
 * answer back (JSON or SSE, event by event).
 */
export class GatewayProxy {
  readonly #d: ProxyDependencies;

  constructor(deps: ProxyDependencies) {
    this.#d = deps;
  }

  resourceUrl(server: string): string {
    return `${this.#d.publicUrl()}/mcp/${server}`;
  }

  /**
   * `clientCertificate`: the TLS client certificate of the connection, when Mandate terminates mutual TLS
   * itself (certificate-bound tokens, RFC 8705 §3).
   */
  async handle(request: ProxyRequest, serverName: string, clientAddress: string | undefined, clientCertificate?: X509Certificate): Promise<ProxyAnswer> {
    const started = performance.now();
    const d = this.#d;
    const settings = d.settings.current;
    if (!hostAllowed(request.headers.get('host') ?? undefined, d.publicUrl(), settings.allowedHosts) || !originAllowed(request.headers.get('origin') ?? undefined, d.publicUrl(), settings.allowedOrigins)) {
      return rpcResponse(403, rpcError(null, -32000, 'Forbidden: Host or Origin not allowed'));
    }
    const server = d.registry.server(serverName);
    if (!server) return problemResponse(new MandateError('MCP_SERVER_NOT_FOUND', `no MCP server ${serverName}`, 404));
    const method = request.method;
    if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') {
      return new Response(null, { status: 405, headers: { allow: 'GET, POST, DELETE' } });
    }

    // ---- who is calling (MCP authorization: the gateway is the OAuth 2.1 resource server) ----
    const resource = this.resourceUrl(serverName);
    let caller: GatewayCaller;
    try {
      caller = await d.authenticate()(
        { authorization: request.headers.get('authorization') ?? undefined, dpop: request.headers.get('dpop') ?? undefined, method, url: externalUrl(request, d.publicUrl()), clientCertificate },
        { audience: [resource, `${d.publicUrl()}/mcp`], requiredScopes: server.settings.requiredScopes ?? [] },
      );
    } catch (error) {
      return this.#challenge(error, resource, server, request.headers.get('authorization') ?? '');
    }
    const agent = await d.agents.get(caller.identityId).catch(() => undefined);
    if (!agent || agent.status !== 'active') {
      return problemResponse(new MandateError('GATEWAY_AGENT_INACTIVE', `identity ${caller.identityId} is not active`, 403));
    }

    // ---- which session ----
    const sessionHeader = request.headers.get('mcp-session-id');
    let session: GatewaySession | undefined;
    if (sessionHeader !== null) {
      session = d.sessions.get(sessionHeader);
      // Unknown, closed, or someone else's: the same 404, so session ids cannot be probed (Transports §Session Management).
      // Bound to the identity and to the user it acts for: a token for another user cannot continue the session.
      if (!session || session.closed || session.server !== serverName || session.caller.identityId !== caller.identityId || session.caller.userId !== caller.userId) {
        return rpcResponse(404, rpcError(null, -32001, 'Session not found'));
      }
      session.caller = caller;
      session.lastSeen = Date.now();
    }

    if (method === 'GET') {
      if (!session) return rpcResponse(400, rpcError(null, -32000, 'Bad Request: Mcp-Session-Id header is required'));
      return this.#forward(request, session, undefined, [], started);
    }
    if (method === 'DELETE') {
      if (!session) return rpcResponse(400, rpcError(null, -32000, 'Bad Request: Mcp-Session-Id header is required'));
      const response = await this.#forward(request, session, undefined, [], started);
      await d.closeSession(session, 'closed by the client', false);
      d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: 'session.close', target: null, decision: 'allow', latencyMs: performance.now() - started, upstreamStatus: response.status });
      return response;
    }

    // ---- POST: look at every message before anything goes upstream ----
    const text = await request.text();
    const parsed = parseBody(text);
    if (!parsed.ok) return rpcResponse(400, parsed.code ? rpcError(parsed.id, parsed.code, parsed.reason) : rpcError(null, -32700, `Parse error: ${parsed.reason}`));
    const { messages } = parsed;
    const initialize = messages.some((m) => m.method === 'initialize');
    if (!session) {
      if (!initialize || messages.length !== 1) return rpcResponse(400, rpcError(null, -32000, 'Bad Request: No valid session ID provided'));
      const limits = d.limits.effective(caller.identityId, settings);
      if (limits.maxSessions !== null && d.sessions.countOf(caller.identityId) >= limits.maxSessions) {
        d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: null, method: 'initialize', target: null, decision: 'deny', reason: 'session_limit', latencyMs: performance.now() - started });
        return rpcResponse(429, rpcError(messages[0]!.id, RPC_RATE_LIMITED, `too many open sessions (limit ${limits.maxSessions})`));
      }
      let endpoint: UpstreamEndpoint;
      try {
        endpoint = await this.#endpoint(server);
      } catch (error) {
        // The cause (a spawn error, an address) is for the operator's log, not for the agent.
        d.logger.warn({ server: serverName, err: (error as Error).message }, 'gateway upstream unavailable');
        return rpcResponse(502, rpcError(messages[0]!.id, RPC_UPSTREAM, `upstream ${serverName} is unavailable`));
      }
      session = new GatewaySession(serverName, caller, agent.ownerId, endpoint, Date.now());
      d.sessions.add(session);
      const opened = session;
      const onAnswer = (answer: RpcMessage) => {
        const version = (answer.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
        if (typeof version === 'string') opened.protocolVersion ??= version;
      };
      const response = await this.#forward(request, session, text, [{ id: messages[0]!.id!, method: 'initialize', onAnswer }], started);
      if (response.status >= 300 || (session.upstreamSessionId === undefined && server.transport === 'stdio')) {
        await d.closeSession(session, 'initialization failed', false);
      }
      d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: 'initialize', target: null, decision: 'allow', latencyMs: performance.now() - started, upstreamStatus: response.status });
      return response;
    }

    if (!d.auditor.healthy) {
      // Recording the refusal is also the probe: the first append that succeeds makes the gateway healthy again.
      d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: messages.find(isRequest)?.method ?? 'message', target: null, decision: 'deny', reason: 'audit_unavailable', latencyMs: performance.now() - started });
      return rpcResponse(503, rpcError(messages.find(isRequest)?.id, RPC_UPSTREAM, 'the audit log is unavailable: calls are refused until it recovers', { code: 'STORE_UNAVAILABLE' }));
    }

    // A batch only where the negotiated protocol has them, without initialize, and with distinct ids (the
    // answers, the audit records and approval cancellations are matched by id): otherwise refused whole.
    const batchProblem = parsed.batch ? batchRefusal(session, messages) : undefined;
    if (batchProblem !== undefined) {
      for (const m of messages) {
        if (m.method !== undefined) d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: m.method, target: targetOf(serverName, m), decision: 'deny', reason: 'batch_refused', latencyMs: performance.now() - started });
      }
      return rpcResponse(400, rpcError(null, -32600, `Invalid Request: ${batchProblem}`));
    }

    // A decided method must come as a request with an id (MCP: ids are strings or integers, never null).
    // Sent as a notification or with `id: null` it would skip the decision below, yet a lenient upstream
    // may still run it: refuse it (a batch whole), so nothing undecided is forwarded.
    const undecidable = messages.find((m) => decidedAction(m) !== undefined && !isRequest(m));
    if (undecidable) {
      d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: undecidable.method!, target: null, decision: 'deny', reason: 'invalid_request', latencyMs: performance.now() - started });
      return rpcResponse(400, rpcError(null, -32600, `Invalid Request: ${undecidable.method} must be a request with a string or integer id`));
    }

    // MCP cancellation (notifications/cancelled): a call still waiting for a human is given up, so an
    // approval granted after the agent stopped waiting can never run it.
    for (const message of messages) {
      const requestId = message.method === 'notifications/cancelled' ? message.params?.requestId : undefined;
      if (typeof requestId === 'string' || typeof requestId === 'number') session.waiting.get(requestId)?.abort();
    }
    const single = messages.length === 1 && !parsed.batch ? messages[0]! : undefined;
    const singleAction = single && isRequest(single) ? decidedAction(single) : undefined;
    if (single && singleAction && (request.headers.get('accept') ?? '').includes('text/event-stream')) {
      return this.#decideStreaming(request, session, agent.ownerId, singleAction, single, text, clientAddress, started);
    }
    const pending: Pending[] = [];
    const refusals: RpcMessage[] = [];
    const labels: string[] = [];
    for (const message of messages) {
      if (!isRequest(message)) continue;
      const id = message.id as RpcId;
      const action = decidedAction(message);
      if (!action) {
        pending.push({ id, method: message.method! });
        continue;
      }
      // All or nothing: once a call of the batch is refused, the rest can never run, so none is decided
      // (no approval request for a call that cannot happen) and each is answered as not forwarded below.
      if (refusals.length > 0) {
        d.auditor.record({ caller, ownerId: agent.ownerId, server: serverName, sessionId: session.id, method: message.method!, target: targetOf(serverName, message), decision: 'deny', reason: 'batch_sibling_refused', latencyMs: performance.now() - started });
        continue;
      }
      // A batch is decided as if its calls came one after another: #decide sees the flow state the calls
      // before it in `pending` would leave, so [read private data, send externally] is refused as a pair.
      const outcome = await this.#decide(session, agent.ownerId, action, message, clientAddress, started, pending, request.signal);
      if ('refusal' in outcome) refusals.push(outcome.refusal);
      else {
        pending.push(outcome.pending);
        labels.push(...(outcome.pending.labels ?? []));
      }
    }
    if (refusals.length > 0) {
      // A batch is all or nothing: nothing of it reaches the upstream when one of its calls is refused.
      // Its calls that were allowed on their own are audited as refused too: they never ran.
      for (const p of pending) {
        if (p.record) d.auditor.record({ ...p.record, decision: 'deny', reason: 'batch_sibling_refused', latencyMs: performance.now() - started });
      }
      const all = parsed.batch
        ? messages.filter(isRequest).map((m) => refusals.find((r) => r.id === m.id) ?? rpcError(m.id, RPC_DENIED, 'not forwarded: another call in this batch was refused'))
        : refusals;
      return rpcResponse(200, parsed.batch ? all : all[0]!);
    }
    if (session.closed) return rpcResponse(200, rpcError(pending[0]?.id, RPC_CANCELLED, 'the session was closed (agent suspended)'));
    this.#admit(session, pending, labels);
    return this.#forward(request, session, text, pending, started);
  }

  /** The session has now touched these labels and tools (data-flow and session SoD rules see them next). */
  #admit(session: GatewaySession, pending: readonly Pending[], labels: readonly string[]): void {
    for (const label of labels) session.labels.add(label);
    // Counted here, not when decided: a call that is refused after all (its batch) never happened.
    session.calls += pending.filter((p) => p.action !== undefined).length;
    for (const p of pending) if (p.action === 'tools/call' && p.target) session.tools.add(p.target);
  }

  /**
   * One decided call from a client that accepts SSE. Usually the same as the general path; but when the
   * call must wait for a human, the agent gets an SSE stream at once: progress notifications while it
   * waits (when it sent a progress token, so SDK clients can keep the request alive), then the upstream's
   * answer, or the refusal, as events on that stream.
   */
  async #decideStreaming(request: ProxyRequest, session: GatewaySession, ownerId: string, action: McpAction, message: RpcMessage, text: string, clientAddress: string | undefined, started: number): Promise<ProxyAnswer> {
    let waiting: (approvalId: string) => void = () => undefined;
    const approvalCreated = new Promise<string>((resolve) => (waiting = resolve));
    const decided = this.#decide(session, ownerId, action, message, clientAddress, started, [], request.signal, (approvalId) => waiting(approvalId));
    const first = await Promise.race([decided.then((outcome) => ({ outcome })), approvalCreated.then((approvalId) => ({ approvalId }))]);
    const finish = async (outcome: Awaited<typeof decided>): Promise<ProxyAnswer> => {
      if ('refusal' in outcome) return rpcResponse(200, outcome.refusal);
      if (session.closed) return rpcResponse(200, rpcError(message.id, RPC_CANCELLED, 'the session was closed (agent suspended)'));
      this.#admit(session, [outcome.pending], outcome.pending.labels ?? []);
      return this.#forward(request, session, text, [outcome.pending], started);
    };
    if ('outcome' in first) return finish(first.outcome);

    const encoder = new TextEncoder();
    const event = (payload: unknown) => encoder.encode(`event: message\ndata: ${JSON.stringify(payload)}\n\n`);
    const progressToken = (message.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    let beat = 0;
    let timer: NodeJS.Timeout | undefined;
    /** The agent hung up: nothing more may be enqueued (the stream would throw), and the answer is given up. */
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (bytes: Uint8Array) => {
          if (!cancelled) controller.enqueue(bytes);
        };
        const heartbeat = () => {
          beat += 1;
          // MCP progress (basic/utilities/progress): only with the client's token; otherwise an SSE comment keeps the connection alive.
          if (typeof progressToken === 'string' || typeof progressToken === 'number') {
            send(event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken, progress: beat, message: `waiting for approval ${first.approvalId}` } }));
          } else send(encoder.encode(`: waiting for approval ${first.approvalId}\n\n`));
        };
        heartbeat();
        timer = setInterval(heartbeat, APPROVAL_HEARTBEAT_MS);
        const relayAnswer = async () => {
          const outcome = await decided;
          clearInterval(timer);
          const answer = await finish(outcome);
          if (cancelled) {
            // The agent is gone (its request signal ended the wait or the upstream call): let the answer go.
            if (answer instanceof StreamedAnswer) answer.abandon();
            else await answer.body?.cancel().catch(() => undefined);
            return;
          }
          const response = asResponse(answer);
          const type = response.headers.get('content-type') ?? '';
          if (type.startsWith('text/event-stream') && response.body) {
            const reader = response.body.getReader();
            for (;;) {
              if (cancelled) {
                await reader.cancel().catch(() => undefined);
                return;
              }
              const { done, value } = await reader.read();
              if (done) break;
              send(value);
            }
          } else {
            const text = await response.text();
            send(text ? encoder.encode(`event: message\ndata: ${text}\n\n`) : event(rpcError(message.id, RPC_UPSTREAM, `the upstream answered ${response.status}`)));
          }
        };
        // Never rejects: an unhandled rejection would end the process.
        void relayAnswer()
          .catch(() => send(event(rpcError(message.id, RPC_UPSTREAM, 'the call failed while streaming its answer'))))
          .finally(() => {
            clearInterval(timer);
            try {
              if (!cancelled) controller.close();
            } catch {
              // Already closed or errored by the stream itself: nothing left to end.
            }
          });
      },
      cancel: () => {
        cancelled = true;
        clearInterval(timer);
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'mcp-session-id': session.id } });
  }

  /** Decides one tools/call, resources/read or prompts/get: rate, policy (agent ∩ user), then a human if the permit asks for one. */
  async #decide(session: GatewaySession, ownerId: string, action: McpAction, message: RpcMessage, clientAddress: string | undefined, started: number, batch: readonly Pending[] = [], requestSignal?: AbortSignal, onWaiting?: (approvalId: string) => void): Promise<{ pending: Pending } | { refusal: RpcMessage }> {
    const d = this.#d;
    const settings = d.settings.current;
    const id = message.id as RpcId;
    const { name, args } = decidedTarget(action, message);
    const caller = session.caller;
    // Audited under the method the agent sent (a completion is recorded as one, decided as a get or read).
    const base = { caller, ownerId, server: session.server, sessionId: session.id, method: message.method === 'completion/complete' ? 'completion/complete' : action };
    if (typeof name !== 'string' || name.length === 0 || name.length > 2000) {
      const field = message.method === 'completion/complete' ? (action === 'resources/read' ? 'ref.uri' : 'ref.name') : action === 'resources/read' ? 'uri' : 'name';
      return { refusal: rpcError(id, -32602, `Invalid params: ${field} is required`) };
    }
    // A resource URI is not matched against the registry (tool and prompt names are, and none holds a NUL):
    // PostgreSQL text cannot hold U+0000, so an approval request for it failed as a 500. Nothing can name it.
    if (name.includes('\u0000')) return { refusal: rpcError(id, -32602, 'Invalid params: the target must not contain U+0000') };
    const target = `${session.server}/${name}`;
    const argsDigest = argumentDigest(args);
    const redacted = redact(args, settings.redactPaths);
    const record = { ...base, target, argsDigest, args: redacted };
    const refuse = (code: number, text: string, extra: Partial<CallRecord>, data?: Record<string, unknown>) => {
      d.auditor.record({ ...record, decision: 'deny', latencyMs: performance.now() - started, ...extra });
      return { refusal: rpcError(id, code, text, data) };
    };

    const limits = d.limits.effective(caller.identityId, settings);
    if (!d.limits.tryCall(caller.identityId, limits.callsPerMinute)) {
      return refuse(RPC_RATE_LIMITED, `rate limit exceeded (${limits.callsPerMinute} calls a minute)`, { reason: 'rate_limited' });
    }

    // Only a present tool the registry knows by exactly this name is forwarded, and its labels and policies
    // are the ones of that name. Anything else (another case, a fullwidth or BOM-prefixed spelling, a
    // path, a tool the upstream hides from its list) would be decided as an unlabelled unknown tool while
    // an upstream that matches names leniently runs a hidden or labelled one. The upstream may have added
    // the tool since the last discovery, so it is asked once (rate-limited) before the call is refused.
    let rediscovered = false;
    if (action === 'tools/call' && d.registry.tool(session.server, name)?.present !== true) {
      await d.rediscovery.refresh(session.server);
      if (d.registry.tool(session.server, name)?.present !== true) {
        return refuse(-32602, `Invalid params: unknown tool ${JSON.stringify(name.slice(0, 200))}`, { reason: 'unknown_tool' }, { code: 'GATEWAY_UNKNOWN_TOOL' });
      }
      rediscovered = true;
    }
    // The same for prompts (prompts/get, and completions for a prompt): decided under their name, they must be the upstream's.
    if (action === 'prompts/get' && !(await d.prompts.known(session.server, name))) {
      return refuse(-32602, `Invalid params: unknown prompt ${JSON.stringify(name.slice(0, 200))}`, { reason: 'unknown_prompt' }, { code: 'GATEWAY_UNKNOWN_PROMPT' });
    }

    if (action === 'tools/call' && d.sessionSod) {
      // Two tools that must not meet in one session (separation of duties): the tools this session used, and earlier calls of this batch.
      const used = [...session.tools, ...batch.filter((p) => p.action === 'tools/call' && p.target).map((p) => p.target!)];
      const conflict = d.sessionSod(used, target);
      if (conflict) return refuse(RPC_DENIED, `denied by separation of duties: ${target} may not be used in a session that used ${conflict.a === target ? conflict.b : conflict.a} (rule "${conflict.rule}")`, { reason: 'sod_session' }, { code: 'GATEWAY_SOD_SESSION', rule: conflict.rule });
    }

    const server = d.registry.server(session.server)!;
    const tool = action === 'tools/call' ? d.registry.tool(session.server, name) : undefined;
    const labels = action === 'tools/call' ? (tool?.labels ?? []) : server.labels;
    // A tool found by the rediscovery just now may not have reached the policy engine's entities yet (that
    // reload follows the change event): it is decided with its registry entry as an override.
    const targetInfo = { action, server: session.server, name, labels, known: tool !== undefined && !rediscovered, ...(tool && { settings: tool.settings }) };
    let decision: GatewayDecision;
    try {
      decision = decideCall(d.pdp, caller, targetInfo, args, flowView(session, batch), { now: new Date(), clientAddress });
    } catch (error) {
      // The decision point is rebuilding after the store was away: nothing is decided (fail closed),
      // but it is no policy's answer either, and the agent may retry shortly.
      if (isMandateError(error) && error.code === 'STORE_UNAVAILABLE') {
        return refuse(RPC_UPSTREAM, 'the decision point is unavailable (the store was away): the call was not forwarded; retry shortly', { reason: 'store_unavailable' }, { code: 'STORE_UNAVAILABLE' });
      }
      // The request could not even be evaluated (a context the engine refuses): fail closed.
      d.logger.warn({ err: (error as Error).message, target }, 'gateway decision failed');
      return refuse(RPC_DENIED, `denied by policy: ${action} ${target} (the request could not be evaluated)`, { reason: 'evaluation_error' });
    }
    const decided = { policyDecision: decision.policyDecision, policies: decision.policies, errors: decision.errors, policyVersion: decision.policyVersion };
    if (!decision.allowed) {
      const who = decision.deniedBy === 'user' ? ` for user ${caller.userId}` : '';
      return refuse(RPC_DENIED, `denied by policy: ${action} ${target}${who}`, { ...decided, reason: decision.deniedBy === 'user' ? 'policy_user' : 'policy' }, { code: 'GATEWAY_DENIED', policies: decision.policies });
    }

    let approvalId: string | undefined;
    if (decision.approvals.length > 0) {
      const approver = decision.approvals[0]!;
      // The wait ends early when the session closes (kill switch), the agent hangs up, or it cancels the request.
      const cancel = new AbortController();
      session.waiting.set(id, cancel);
      // Unlinked from the (long-lived) session signal when the wait ends (linked-signal.ts).
      const waitEnds = linkedSignal([session.signal, cancel.signal, ...(requestSignal ? [requestSignal] : [])]);
      let outcome: Awaited<ReturnType<typeof d.approvals.request>>;
      try {
        outcome = await d.approvals.request(
          { agentId: caller.identityId, ownerId, userId: caller.userId, approver, server: session.server, action, target, arguments: redacted, argsDigest, policies: decision.policies, sessionId: session.id, timeoutSeconds: settings.approvalTimeoutSeconds },
          waitEnds.signal,
          (approval) => onWaiting?.(approval.id),
        );
      } finally {
        waitEnds.dispose();
        session.waiting.delete(id);
      }
      const { approval, status } = outcome;
      approvalId = approval.id;
      if (status !== 'approved') {
        const [code, text] =
          status === 'expired' ? [RPC_APPROVAL_TIMEOUT, `approval ${approval.id} timed out: nobody approved ${action} ${target} in ${settings.approvalTimeoutSeconds}s`]
          : status === 'cancelled' ? [RPC_CANCELLED, `approval ${approval.id} was cancelled: the session was closed or the request cancelled`]
          : [RPC_APPROVAL_DENIED, `approval ${approval.id} was denied: ${action} ${target}`];
        return refuse(code, text, { ...decided, approvalId: approval.id, reason: `approval_${status}` }, { code: `GATEWAY_APPROVAL_${status.toUpperCase()}`, approvalId: approval.id });
      }
    }
    return { pending: { id, method: action, action, target, labels, record: { ...record, decision: 'allow', ...decided, ...(approvalId !== undefined && { approvalId }) } } };
  }

  /** Sends the (rewritten) request upstream and streams the answer back, inspecting what it must. */
  async #forward(request: ProxyRequest, session: GatewaySession, body: string | undefined, pending: Pending[], started: number): Promise<ProxyAnswer> {
    const d = this.#d;
    const refused = await this.#recordDecisions(pending, session, started);
    if (refused) return refused;
    const server = d.registry.server(session.server);
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    if (session.upstreamSessionId !== undefined) headers['mcp-session-id'] = session.upstreamSessionId;
    try {
      const injected = server?.transport === 'http' ? await d.credentials.headersFor(session.server, server.credential !== null) : {};
      for (const [name, value] of Object.entries(injected)) headers[name.toLowerCase()] = value;
    } catch (error) {
      d.logger.warn({ server: session.server, err: (error as Error).message }, 'gateway could not obtain the upstream credential');
      return this.#upstreamFailure(pending, session, 502, `the gateway could not obtain its credential for upstream ${session.server}`, started);
    }
    // Closing the session (kill switch) or the agent hanging up cancels the upstream call, until it is over.
    const link = linkedSignal([session.signal, request.signal]);
    let upstream: UpstreamAnswer;
    try {
      upstream = await session.endpoint.fetch({ method: request.method as 'GET' | 'POST' | 'DELETE', headers, body, signal: link.signal });
    } catch (error) {
      link.dispose();
      if (session.signal.aborted) return this.#upstreamFailure(pending, session, 200, 'the session was closed (agent suspended)', started, RPC_CANCELLED);
      d.logger.warn({ server: session.server, err: (error as Error).message }, 'gateway upstream unreachable');
      return this.#upstreamFailure(pending, session, 502, `upstream ${session.server} is unreachable`, started);
    }
    const upstreamSession = answerHeader(upstream, 'mcp-session-id');
    if (upstreamSession !== undefined && session.upstreamSessionId === undefined) session.upstreamSessionId = upstreamSession;

    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !DROPPED_RESPONSE_HEADERS.includes(name)) out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    out['mcp-session-id'] = session.id;
    if (upstream.status === 404 && session.upstreamSessionId !== undefined && request.method !== 'DELETE') {
      // The upstream forgot the session (restart, expiry): end ours too, so the agent initializes afresh.
      link.dispose();
      upstream.body?.destroy();
      await d.closeSession(session, 'the upstream ended the session', false);
      return rpcResponse(404, rpcError(pending[0]?.id, -32001, 'Session not found'));
    }
    if (upstream.status < 200 || upstream.status > 599) {
      // Not an answer HTTP lets the gateway pass on (a 1xx, or no status at all): the upstream is broken.
      link.dispose();
      upstream.body?.destroy();
      d.logger.warn({ server: session.server, status: upstream.status }, 'gateway upstream answered an impossible status');
      return this.#upstreamFailure(pending, session, 502, `upstream ${session.server} gave an invalid answer`, started);
    }
    if (upstream.status === 401 || upstream.status === 403) {
      // The upstream refused *our* credential: that is a gateway configuration problem, not the agent's.
      link.dispose();
      upstream.body?.destroy();
      return this.#upstreamFailure(pending, session, 502, `the upstream refused the gateway's credential (${upstream.status})`, started);
    }

    const watched = new Map(pending.map((p) => [p.id, p]));
    /** Requests of this POST not answered yet: if the stream breaks, each still gets an error response. */
    const unanswered = new Set(pending.map((p) => p.id));
    const finish = (p: Pending, result: 'ok' | 'error' | 'incomplete') => {
      if (!p.record || p.decisionSeq === undefined) return;
      d.auditor.outcome(p.record, p.decisionSeq, { latencyMs: performance.now() - started, upstreamStatus: upstream.status, result });
      watched.delete(p.id);
    };
    const inspect = (message: RpcMessage): RpcMessage | undefined => {
      if (message.id === undefined || message.id === null || message.method !== undefined) return undefined;
      unanswered.delete(message.id);
      const p = watched.get(message.id);
      if (!p) return undefined;
      p.onAnswer?.(message);
      if (isListMethod(p.method) && message.result && typeof message.result === 'object') {
        const filtered = this.#filterList(session, p.method, message);
        watched.delete(p.id);
        return filtered;
      }
      const isError = message.error !== undefined || (message.result as { isError?: unknown } | undefined)?.isError === true;
      finish(p, isError ? 'error' : 'ok');
      return undefined;
    };
    /** The answer is over (relayed, read, or broken off): unanswered calls are audited as incomplete. */
    const complete = () => {
      link.dispose();
      for (const p of [...watched.values()]) finish(p, 'incomplete');
    };

    const type = answerHeader(upstream, 'content-type') ?? '';
    const sse = type.startsWith('text/event-stream');
    // SSE answers to requests are always read event by event (a broken stream must still answer them);
    // JSON answers only when something in them must be seen or filtered.
    const interesting = pending.some((p) => p.record || p.onAnswer || isListMethod(p.method)) || (sse && pending.length > 0);
    if (!upstream.body) {
      complete();
      return new Response(null, { status: upstream.status, headers: out });
    }
    if (!interesting) return new StreamedAnswer(upstream.status, out, upstream.body, { done: complete });
    if (sse) {
      const rewriter = new SseRewriter((data) => {
        let message: RpcMessage;
        try {
          message = JSON.parse(data) as RpcMessage;
        } catch {
          return undefined;
        }
        const replaced = inspect(message);
        return replaced ? JSON.stringify(replaced) : undefined;
      });
      const broken = () => {
        const cancelled = session.signal.aborted;
        const errors = [...unanswered].map((id) => rpcError(id, cancelled ? RPC_CANCELLED : RPC_UPSTREAM, cancelled ? 'the session was closed (agent suspended)' : 'the upstream stream broke before answering'));
        unanswered.clear();
        return errors.length === 0 ? undefined : new TextEncoder().encode(errors.map((e) => `event: message\ndata: ${JSON.stringify(e)}\n\n`).join(''));
      };
      return new StreamedAnswer(upstream.status, out, upstream.body, { rewriter, done: complete, broken });
    }
    if (type.startsWith('application/json')) {
      let text: string;
      try {
        text = await readText(upstream.body);
      } catch (error) {
        complete();
        throw error;
      }
      let replacedText = text;
      try {
        const parsed = JSON.parse(text) as RpcMessage | RpcMessage[];
        if (Array.isArray(parsed)) {
          const next = parsed.map((m) => inspect(m) ?? m);
          if (next.some((m, i) => m !== parsed[i])) replacedText = JSON.stringify(next);
        } else {
          const next = inspect(parsed);
          if (next) replacedText = JSON.stringify(next);
        }
      } catch {
        // Not JSON after all: pass it on untouched; the agent's SDK reports it.
      }
      complete();
      return new Response(replacedText, { status: upstream.status, headers: out });
    }
    return new StreamedAnswer(upstream.status, out, upstream.body, { done: complete });
  }

  /**
   * tools/list, prompts/list and resources/list answer only with what this caller may call, get or read.
   * Listed objects (and a tool's inputSchema) pass exactly as the upstream sent them; only the array is
   * shortened.
   */
  #filterList(session: GatewaySession, method: ListMethod, message: RpcMessage): RpcMessage {
    const d = this.#d;
    const { key, action, field } = LISTS[method];
    const result = message.result as Record<string, unknown>;
    const items = result[key];
    if (!Array.isArray(items)) return message;
    const meta = { now: new Date(), clientAddress: undefined };
    const view = { id: session.id, labels: session.labels, calls: session.calls };
    const server = d.registry.server(session.server);
    const shown = items.filter((item: unknown) => {
      const name = (item as Record<string, unknown> | null)?.[field];
      if (typeof name !== 'string') return false;
      const tool = action === 'tools/call' ? d.registry.tool(session.server, name) : undefined;
      const labels = action === 'tools/call' ? (tool?.labels ?? []) : (server?.labels ?? []);
      try {
        return mayList(d.pdp, session.caller, { action, server: session.server, name, labels, known: tool !== undefined, ...(tool && { settings: tool.settings }) }, view, meta);
      } catch {
        return false;
      }
    });
    d.auditor.record({ caller: session.caller, ownerId: session.ownerId, server: session.server, sessionId: session.id, method, target: null, decision: 'allow', latencyMs: 0, listed: { upstream: items.length, shown: shown.length } });
    return { ...message, result: { ...result, [key]: shown } };
  }

  async #endpoint(server: UpstreamServer): Promise<UpstreamEndpoint> {
    if (server.transport === 'http') return httpEndpoint(server.url!);
    return new StdioBridge(server.command!, server.args, await this.#d.registry.stdioEnv(server));
  }

  /**
   * Makes the decision record of every decided call in `pending` durable before anything is forwarded
   * (all of them in one group commit, shared with concurrent calls). A crash after this loses at most the
   * outcome records; a call whose decision cannot be written is not forwarded: the answer is a 503 with
   * a JSON-RPC error per request (fail closed). Also refuses when the session closed meanwhile.
   */
  async #recordDecisions(pending: Pending[], session: GatewaySession, started: number): Promise<Response | undefined> {
    const decided = pending.filter((p) => p.record);
    if (decided.length === 0) return undefined;
    const d = this.#d;
    const latencyMs = performance.now() - started;
    const written = await Promise.allSettled(decided.map(async (p) => (p.decisionSeq = await d.auditor.decided({ ...p.record!, latencyMs }))));
    if (written.some((w) => w.status === 'rejected')) {
      // Some records of a batch may have been written: their calls were not forwarded either, so say so.
      for (const p of decided) {
        if (p.decisionSeq !== undefined) d.auditor.outcome(p.record!, p.decisionSeq, { latencyMs: performance.now() - started, result: 'incomplete', reason: 'audit_unavailable' });
      }
      const errors = pending.map((p) => rpcError(p.id, RPC_UPSTREAM, 'the audit log is unavailable: the call was not forwarded', { code: 'STORE_UNAVAILABLE' }));
      const response = rpcResponse(503, errors.length === 1 ? errors[0]! : errors);
      if (!session.closed) response.headers.set('mcp-session-id', session.id);
      return response;
    }
    // The kill switch may have closed the session while the records were being written.
    if (session.signal.aborted) return this.#upstreamFailure(pending, session, 200, 'the session was closed (agent suspended)', started, RPC_CANCELLED);
    return undefined;
  }

  #upstreamFailure(pending: Pending[], session: GatewaySession, status: number, text: string, started: number, code = RPC_UPSTREAM): Response {
    for (const p of pending) {
      if (p.record && p.decisionSeq !== undefined) this.#d.auditor.outcome(p.record, p.decisionSeq, { latencyMs: performance.now() - started, result: 'incomplete', reason: code === RPC_CANCELLED ? 'kill_switch' : 'upstream_failed' });
    }
    const requests = pending.length > 0 ? pending : [{ id: null as unknown as RpcId, method: '' }];
    const errors = requests.map((p) => rpcError(p.id, code, text));
    const response = rpcResponse(status, errors.length === 1 ? errors[0]! : errors);
    if (!session.closed) response.headers.set('mcp-session-id', session.id);
    return response;
  }

  #challenge(error: unknown, resource: string, server: UpstreamServer, authorization: string): Response {
    if (!isTokenError(error)) {
      this.#d.logger.error({ err: error }, 'gateway authentication failed');
      return problemResponse(new MandateError('VERIFIER_UNAVAILABLE', 'the token could not be checked', 503));
    }
    const scheme = /^dpop /i.test(authorization) ? 'DPoP' : 'Bearer';
    const problem = toProblem(error);
    const headers: Record<string, string> = {
      ...problem.headers,
      // RFC 9728 §5.1 / MCP authorization: the challenge tells the client where the resource metadata is.
      'www-authenticate': wwwAuthenticate(error, { scheme, resourceMetadataUrl: protectedResourceMetadataUrl(resource), ...(error.code === 'TOKEN_SCOPE_INSUFFICIENT' && { scope: (server.settings.requiredScopes ?? []).join(' ') }) }),
    };
    if (error.dpopNonce) headers['dpop-nonce'] = error.dpopNonce;
    return new Response(problem.body, { status: problem.status, headers });
  }
}

/** `server/name` of a decided message that names its target, for the audit record of a message refused undecided. */
function targetOf(server: string, message: RpcMessage): string | null {
  const action = decidedAction(message);
  const name = action === undefined ? undefined : decidedTarget(action, message).name;
  return typeof name === 'string' ? `${server}/${name.slice(0, 2000)}` : null;
}

/** Why a batch is refused whole, if it is. */
function batchRefusal(session: GatewaySession, messages: readonly RpcMessage[]): string | undefined {
  if (!allowsBatches(session.protocolVersion)) {
    const version = session.protocolVersion === undefined ? 'not known' : JSON.stringify(session.protocolVersion.slice(0, 40));
    return `JSON-RPC batches are not part of this session's protocol version (${version})`;
  }
  // MCP 2025-03-26 (lifecycle): the initialize request must not be part of a batch.
  if (messages.some((m) => m.method === 'initialize')) return 'initialize must not be part of a batch';
  const ids = new Set<RpcId>();
  for (const m of messages) {
    if (!isRequest(m)) continue;
    if (ids.has(m.id!)) return 'the requests of a batch need distinct ids';
    ids.add(m.id!);
  }
  return undefined;
}

/**
 * The session's data flow as one call sees it: what the session has touched, plus what the calls decided
 * before it in the same batch will have touched by the time it runs (they are forwarded together).
 */
function flowView(session: GatewaySession, batch: readonly Pending[]): SessionView {
  const earlier = batch.filter((p) => p.action !== undefined);
  if (earlier.length === 0) return { id: session.id, labels: session.labels, calls: session.calls };
  return { id: session.id, labels: new Set([...session.labels, ...earlier.flatMap((p) => p.labels ?? [])]), calls: session.calls + earlier.length };
}

/** A Node body as UTF-8 text (a leading BOM dropped, as WHATWG `text()`). */
async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * The URL as the agent called it (for DPoP `htu`, RFC 9449 §4.3): behind a TLS-terminating proxy the
 * request Mandate sees is http://…, so when the Host is the public one the public URL's scheme is used.
 */
function externalUrl(request: ProxyRequest, publicUrl: string): string {
  const url = new URL(request.url);
  const pub = publicUrlOf(publicUrl);
  return url.host === pub.host ? `${pub.origin}${url.pathname}${url.search}` : request.url;
}

function rpcResponse(status: number, body: RpcMessage | RpcMessage[]): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

export function problemResponse(error: MandateError): Response {
  const { status, headers, body } = toProblem(error);
  return new Response(body, { status, headers });
}
