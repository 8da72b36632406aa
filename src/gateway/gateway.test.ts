import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorize, compilePolicySet, createEntityStore, type CompiledPolicySet, type EntityStore } from '../policy/index.ts';
import { buildContext, decideCall, mayList, toCedarRecord, type PolicyPoint } from './decide.ts';
import { parseBody } from './jsonrpc.ts';
import { hostAllowed, originAllowed } from './origin.ts';
import { argumentDigest, redact } from './redact.ts';
import { sseTransform } from './sse.ts';
import { POLICY_TEMPLATES } from './templates.ts';
import type { GatewayCaller } from './types.ts';

async function pipe(chunks: string[], inspect: (data: string) => string | undefined): Promise<string> {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  }).pipeThrough(sseTransform(inspect));
  return new Response(stream).text();
}

describe('sseTransform', () => {
  it('passes events through byte for byte when nothing is replaced, however the stream is chunked', async () => {
    const text = 'event: message\nid: 1\ndata: {"a":1}\n\nid: 2\ndata: {"b":2}\ndata: more\n\n: comment\n\n';
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: text.length - 1 }), { maxLength: 8 }), async (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [];
        let last = 0;
        for (const p of points) {
          chunks.push(text.slice(last, p));
          last = p;
        }
        chunks.push(text.slice(last));
        expect(await pipe(chunks, () => undefined)).toBe(text);
      }),
    );
  });

  it('replaces the data of one event and keeps its id and event fields', async () => {
    const out = await pipe(['id: 7\nevent: message\ndata: {"x":1}\n\n', 'data: {"y":2}\n\n'], (data) => (data.includes('"x"') ? '{"x":2}' : undefined));
    expect(out).toBe('id: 7\nevent: message\ndata: {"x":2}\n\ndata: {"y":2}\n\n');
  });

  it('emits each event as soon as it is complete (no buffering of the whole stream)', async () => {
    let push: (s: string) => void = () => undefined;
    const source = new ReadableStream<Uint8Array>({ start: (c) => void (push = (s) => c.enqueue(new TextEncoder().encode(s))) });
    const reader = source.pipeThrough(sseTransform(() => undefined)).getReader();
    push('data: first\n\ndata: sec');
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('data: first\n\n');
    await reader.cancel();
  });
});

describe('parseBody (property: never throws, refuses what is not JSON-RPC)', () => {
  it('accepts requests, notifications, responses and batches', () => {
    expect(parseBody('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')).toMatchObject({ ok: true, batch: false });
    expect(parseBody('[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","result":{}}]')).toMatchObject({ ok: true, batch: true });
    expect(parseBody('{"jsonrpc":"1.0","id":1,"method":"x"}')).toMatchObject({ ok: false });
    expect(parseBody('[]')).toMatchObject({ ok: false });
    expect(parseBody('{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}')).toMatchObject({ ok: false });
  });
  it('never throws on arbitrary input', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json()), (text) => void parseBody(text)));
  });
});

describe('argument handling', () => {
  it('redacts configured paths, with * and ** wildcards', () => {
    const args = { user: 'a', password: 'p', nested: { token: 't', list: [{ secret: 's', keep: 1 }] }, headers: { authorization: 'x' } };
    expect(redact(args, ['password', '**.token', 'nested.list.*.secret', 'headers.*'])).toEqual({ user: 'a', password: '[redacted]', nested: { token: '[redacted]', list: [{ secret: '[redacted]', keep: 1 }] }, headers: { authorization: '[redacted]' } });
  });
  it('digests arguments canonically (key order does not matter)', () => {
    expect(argumentDigest({ a: 1, b: 2 })).toBe(argumentDigest({ b: 2, a: 1 }));
    expect(argumentDigest({ a: 1 })).not.toBe(argumentDigest({ a: 2 }));
  });
  it('an argument cannot smuggle an entity reference or extension call into the Cedar context', () => {
    expect(toCedarRecord({ who: { __entity: { type: 'Human', id: 'boss' } }, n: 1.5, x: null, ok: [1, 'a'], deep: { __extn: { fn: 'ip', arg: '1.1.1.1' }, y: true } })).toEqual({ who: {}, n: '1.5', ok: [1, 'a'], deep: { y: true } });
  });
  it('any JSON arguments convert into a context the engine accepts', () => {
    const caller: GatewayCaller = { identityId: 'agt_x', clientId: 'c', userId: null, chain: [], scopes: [], tokenId: 't' };
    fc.assert(
      fc.property(fc.jsonValue(), (args) => {
        const context = buildContext(caller, args, { id: 's', labels: new Set(['a']), calls: 1 }, { now: new Date(0), clientAddress: '127.0.0.1' });
        authorize(compilePolicySet('permit (principal, action, resource) when { context.session.calls > 0 };'), createEntityStore([]), { principal: { type: 'Agent', id: 'x' }, action: { type: 'Action', id: 'tools/call' }, resource: { type: 'Tool', id: 's/t' }, context });
      }),
    );
  });
});

describe('Host and Origin checks (DNS rebinding)', () => {
  it('accepts the public host and loopback aliases on the same port, refuses others', () => {
    expect(hostAllowed('localhost:7400', 'http://localhost:7400', [])).toBe(true);
    expect(hostAllowed('127.0.0.1:7400', 'http://localhost:7400', [])).toBe(true);
    expect(hostAllowed('[::1]:7400', 'http://localhost:7400', [])).toBe(true);
    expect(hostAllowed('127.0.0.1:7401', 'http://localhost:7400', [])).toBe(false);
    expect(hostAllowed('evil.example.com', 'http://localhost:7400', [])).toBe(false);
    expect(hostAllowed('mandate.example.com', 'https://mandate.example.com', [])).toBe(true);
    expect(hostAllowed('localhost', 'https://mandate.example.com', [])).toBe(false);
    expect(hostAllowed('internal:8080', 'https://mandate.example.com', ['internal:8080'])).toBe(true);
    expect(hostAllowed(undefined, 'http://localhost:7400', [])).toBe(false);
    expect(originAllowed(undefined, 'http://localhost:7400', [])).toBe(true);
    expect(originAllowed('http://127.0.0.1:7400', 'http://localhost:7400', [])).toBe(true);
    expect(originAllowed('http://evil.example.com', 'http://localhost:7400', [])).toBe(false);
    expect(originAllowed('null', 'http://localhost:7400', [])).toBe(false);
  });
});

/** The engine plus an entity store, shaped like the PDP service the gateway talks to. */
function policyPoint(cedar: string, entities: EntityStore): PolicyPoint {
  const set: CompiledPolicySet = compilePolicySet(cedar);
  return {
    decide(request, options) {
      const lookup = options?.overrides ? entities.overlay(options.overrides, 'merge') : entities;
      const d = authorize(set, lookup, request);
      return { ...d, policyDecision: d.decision, mode: 'enforce', policyVersion: 1 };
    },
    policySet: set,
  };
}

describe('decisions with the gateway vocabulary', () => {
  const entities = createEntityStore([
    { uid: { type: 'Human', id: 'hum_o' }, attrs: { email: 'o@x', department: 'eng' }, parents: [] },
    { uid: { type: 'Human', id: 'hum_u' }, attrs: { email: 'u@x', department: 'sales' }, parents: [] },
    { uid: { type: 'Agent', id: 'agt_a' }, attrs: { owner: { __entity: { type: 'Human', id: 'hum_o' } }, tags: [], status: 'active' }, parents: [] },
    { uid: { type: 'McpServer', id: 'crm' }, attrs: { name: 'crm', labels: [] }, parents: [] },
    { uid: { type: 'Tool', id: 'crm/read' }, attrs: { server: 'crm', name: 'read', labels: ['private_data'] }, parents: [{ type: 'McpServer', id: 'crm' }] },
    { uid: { type: 'Tool', id: 'crm/mail' }, attrs: { server: 'crm', name: 'mail', labels: ['external_sink'] }, parents: [{ type: 'McpServer', id: 'crm' }] },
    { uid: { type: 'Tool', id: 'crm/drop' }, attrs: { server: 'crm', name: 'drop', labels: ['destructive'] }, parents: [{ type: 'McpServer', id: 'crm' }] },
  ]);
  const agent: GatewayCaller = { identityId: 'agt_a', clientId: 'c', userId: null, chain: [], scopes: [], tokenId: 't' };
  const meta = { now: new Date('2026-01-01T00:00:00Z'), clientAddress: '::ffff:127.0.0.1' };
  const fresh = { id: 's', labels: new Set<string>(), calls: 0 };
  const tool = (name: string, labels: string[]) => ({ action: 'tools/call' as const, server: 'crm', name, labels, known: true });

  it('the issue\'s example: permit by the owner\'s department', () => {
    const pdp = policyPoint('permit (principal, action == Action::"tools/call", resource == Tool::"crm/read") when { principal.owner.department == "eng" };', entities);
    expect(decideCall(pdp, agent, tool('read', ['private_data']), {}, fresh, meta).allowed).toBe(true);
    expect(decideCall(pdp, agent, tool('mail', ['external_sink']), {}, fresh, meta).allowed).toBe(false);
  });

  it('default deny, and a policy error denies', () => {
    expect(decideCall(policyPoint('', entities), agent, tool('read', []), {}, fresh, meta).allowed).toBe(false);
    const erroring = policyPoint('permit (principal, action, resource) when { context.args.missing == 1 };', entities);
    const d = decideCall(erroring, agent, tool('read', []), {}, fresh, meta);
    expect(d.allowed).toBe(false);
    expect(d.errors).toHaveLength(1);
  });

  it('intersection: acting for a user, both the agent and the user must be allowed', () => {
    const pdp = policyPoint('permit (principal, action, resource in McpServer::"crm") when { principal is Agent || (principal has department && principal.department == "eng") };', entities);
    expect(decideCall(pdp, agent, tool('read', []), {}, fresh, meta).allowed).toBe(true);
    const forUser = { ...agent, userId: 'hum_u', chain: ['agt_a'] };
    const d = decideCall(pdp, forUser, tool('read', []), {}, fresh, meta);
    expect(d).toMatchObject({ allowed: false, deniedBy: 'user' });
  });

  it('toxic flow templates: private data then an external sink; untrusted content then a destructive tool', () => {
    const templates = POLICY_TEMPLATES.filter((t) => t.id.startsWith('block-')).map((t) => t.cedar).join('\n');
    const pdp = policyPoint(`permit (principal, action, resource in McpServer::"crm");\n${templates}`, entities);
    expect(decideCall(pdp, agent, tool('mail', ['external_sink']), {}, fresh, meta).allowed).toBe(true);
    expect(decideCall(pdp, agent, tool('mail', ['external_sink']), {}, { ...fresh, labels: new Set(['private_data']) }, meta).allowed).toBe(false);
    expect(decideCall(pdp, agent, tool('drop', ['destructive']), {}, { ...fresh, labels: new Set(['untrusted_content']) }, meta).allowed).toBe(false);
    expect(decideCall(pdp, agent, tool('drop', ['destructive']), {}, { ...fresh, labels: new Set(['private_data']) }, meta).allowed).toBe(true);
  });

  it('@approval on the determining permit asks for a human', () => {
    const pdp = policyPoint('@approval("owner")\npermit (principal, action, resource == Tool::"crm/drop");\npermit (principal, action, resource == Tool::"crm/read");', entities);
    expect(decideCall(pdp, agent, tool('drop', []), {}, fresh, meta).approvals).toEqual(['owner']);
    expect(decideCall(pdp, agent, tool('read', []), {}, fresh, meta).approvals).toEqual([]);
  });

  it('context carries args, chain, session, time and client address', () => {
    const pdp = policyPoint(
      'permit (principal, action, resource) when { context.args.n == 3 && context.chain.contains("agt_a") && context.session.calls == 2 && context.session.labels.contains("x") && context.time > datetime("2025-01-01") && context.clientAddress.isLoopback() };',
      entities,
    );
    expect(decideCall(pdp, agent, tool('read', []), { n: 3 }, { id: 's', labels: new Set(['x']), calls: 2 }, meta).allowed).toBe(true);
  });

  it('listing keeps tools whose permit depends on arguments, drops forbidden ones', () => {
    const pdp = policyPoint('permit (principal, action, resource == Tool::"crm/read") when { context.args.id == "1" };\nforbid (principal, action, resource == Tool::"crm/mail");\npermit (principal, action, resource == Tool::"crm/mail");', entities);
    expect(mayList(pdp, agent, tool('read', []), fresh, meta)).toBe(true);
    expect(mayList(pdp, agent, tool('mail', []), fresh, meta)).toBe(false);
    expect(mayList(pdp, agent, tool('drop', []), fresh, meta)).toBe(false);
  });

  it('tools the registry does not know are decided with their server as parent and no labels', () => {
    const pdp = policyPoint('permit (principal, action, resource in McpServer::"crm") when { resource.labels.isEmpty() };', entities);
    expect(decideCall(pdp, agent, { action: 'tools/call', server: 'crm', name: 'new_tool', labels: [], known: false }, {}, fresh, meta).allowed).toBe(true);
  });
});

describe('GatewayAuditor', () => {
  it('fails closed: a failing append makes it unhealthy, the next successful one heals it', async () => {
    const { GatewayAuditor } = await import('./auditor.ts');
    const pino = (await import('pino')).default;
    let fail = true;
    const appended: unknown[] = [];
    const audit = {
      append: async (input: unknown) => {
        if (fail) throw new Error('disk full');
        appended.push(input);
        return {};
      },
    };
    const auditor = new GatewayAuditor(audit as never, pino({ level: 'silent' }), { windowMs: 1 });
    const caller: GatewayCaller = { identityId: 'agt_x', clientId: 'c', userId: null, chain: [], scopes: [], tokenId: 't' };
    const record = { caller, ownerId: 'hum_o', server: 's', sessionId: 'mcs_1', method: 'tools/call', target: 's/t', decision: 'allow' as const, latencyMs: 1 };
    auditor.record(record);
    await auditor.flush();
    expect(auditor.healthy).toBe(false);
    fail = false;
    auditor.record({ ...record, decision: 'deny', reason: 'audit_unavailable' });
    await auditor.flush();
    expect(auditor.healthy).toBe(true);
    expect(appended).toHaveLength(1);
    expect(appended[0]).toMatchObject({ actor: 'agent:agt_x', action: 'mcp.tools/call', target: 's/t', outcome: 'deny', details: { reason: 'audit_unavailable', owner: 'hum_o' } });
  });
});
