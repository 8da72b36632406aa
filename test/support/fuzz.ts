/**
 * The route fuzzer (hardening issue): hostile requests to every route family of a running Mandate —
 * the admin API (every operation its OpenAPI document lists, with bodies derived from each operation's
 * schema and then broken), AuthZEN, SCIM, OAuth, the MCP gateway, the discovery documents. Each answer
 * must be a clean one for its family (never a 5xx; a refusal in the family's error format), the
 * process must stay up, and the audit chain must verify afterwards. `test/fuzz.test.ts` runs it at a
 * size that fits CI; `npm run fuzz` at 100,000 inputs.
 *
 * It only ever sends requests to the server under test, and every URL it puts in a body points at a
 * closed loopback port or a `.invalid` host: fuzzed webhooks, audit sinks, MCP upstreams and JWKS URLs
 * must never reach anything else. A stdio MCP server's command is always a path that does not exist.
 */
import fc from 'fast-check';

export interface FuzzRequest {
  family: string;
  /** The route as documented (`/api/v1/humans/{id}`), so findings group by route rather than by input. */
  route: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface FuzzContext {
  baseUrl: string;
  adminToken: string;
  scimToken: string;
  /** An access token for `/mcp/demo`, and an initialized session of it. */
  mcpToken: string;
  mcpSession: string;
  /** Ids that exist, so some requests get past "not found" into the code behind it. */
  ids: string[];
  openapi: { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: JsonSchema }> } }>> };
}

type JsonSchema = Record<string, unknown>;

/** URLs a fuzzed body may carry: nothing listens at any of them, and `.invalid` never resolves (RFC 6761). */
const SAFE_URLS = ['http://127.0.0.1:9/fuzz', 'https://127.0.0.1:9/x?y=1', 'https://fuzz.invalid/jwks', 'http://[::1]:9/', 'ftp://fuzz.invalid/', 'https://fuzz.invalid', 'not a url', ''];
const MISSING_COMMAND = '/nonexistent/mandate-fuzz-command';

/** Strings that have broken parsers before, and plain random ones. */
export function hostileString(ids: string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }).map((u) => String.fromCharCode(...u)) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '', ' ', '\ud800', 'a\udfffb', '\u0000', 'x\u0000y', '__proto__', 'constructor', 'prototype', 'toString', '..', '../../etc/passwd', '%00', '%2e%2e%2f', '*', '\\', "' or 1=1 --", '"', '${jndi:ldap://fuzz.invalid/}', '{{7*7}}', '<script>alert(1)</script>',
        'ｈｉｄｄｅｎ_admin', '\ufeffecho', 'ECHO', 'echo', 'crm_lookup', 'send_email', '\u202egnp.exe', 'null', 'true', '-1', '0', '1.5', '1e309', 'NaN', 'a'.repeat(300), 'é'.repeat(2000), '😀', '\r\nX-Injected: 1',
        'Agent', 'Human', 'Action::"tools/call"', 'permit (principal, action, resource);', 'forbid (principal, action, resource);', 'active', 'suspended', 'enforce', 'log-only', 'role:auditor', 'tool:demo/echo', 'scope:read',
        'admin', 'urn:ietf:params:oauth:grant-type:token-exchange', 'client_credentials', 'userName eq "x"', 'displayName co "a" or userName sw "b"',
      ),
    },
    ...(ids.length > 0 ? [{ weight: 3, arbitrary: fc.constantFrom(...ids) }] : []),
  );
}

const hostileNumber = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1, 1.5, 2 ** 53 + 1, -(2 ** 31), 1e308, Number.MAX_SAFE_INTEGER));

/** Any JSON value, with hostile strings in it. */
function hostileJson(ids: string[]): fc.Arbitrary<unknown> {
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, hostileString(ids), hostileNumber, fc.boolean(), fc.constant(null), tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(hostileString(ids), tie('value'), { maxKeys: 4 }),
  }));
  return value;
}

/**
 * A value for a JSON Schema (as zod renders it): usually one the schema accepts, with hostile strings
 * and numbers inside; sometimes anything at all, so validation itself is attacked too.
 */
export function fromSchema(schema: JsonSchema | undefined, ids: string[], name = '', depth = 0): fc.Arbitrary<unknown> {
  const anything = hostileJson(ids);
  if (!schema || depth > 6) return anything;
  return fc.oneof({ weight: 9, arbitrary: shaped(schema, ids, name, depth) }, { weight: 1, arbitrary: anything });
}

function shaped(schema: JsonSchema, ids: string[], name: string, depth: number): fc.Arbitrary<unknown> {
  if (/^command$/i.test(name)) return fc.constant(MISSING_COMMAND);
  // The kill switch for everything would leave the rest of the run probing a stopped gateway.
  if (name === 'all') return fc.constant(false);
  if (/url|uri|endpoint|issuer|webhook|jwks|href|audience|resource$/i.test(name) || schema.format === 'uri' || schema.format === 'url') return fc.constantFrom(...SAFE_URLS);
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives?.length) return fc.oneof(...alternatives.map((s) => shaped(s, ids, name, depth + 1)));
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) return shaped(schema.allOf[0] as JsonSchema, ids, name, depth + 1);
  const type = Array.isArray(schema.type) ? (schema.type as string[])[0] : (schema.type as string | undefined);
  switch (type) {
    case 'string':
      if (schema.format === 'email') return fc.oneof(fc.emailAddress(), hostileString(ids));
      if (schema.format === 'date-time') return fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), hostileString(ids));
      return hostileString(ids);
    case 'integer':
      return fc.oneof(fc.integer({ min: typeof schema.minimum === 'number' ? schema.minimum : -10, max: typeof schema.maximum === 'number' ? Math.min(schema.maximum, 2 ** 31) : 100_000 }), hostileNumber);
    case 'number':
      return hostileNumber;
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(fromSchema(schema.items as JsonSchema | undefined, ids, name, depth + 1), { maxLength: 3 });
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, value] of Object.entries(properties)) model[key] = fromSchema(value, ids, key, depth + 1);
      const required = ((schema.required ?? []) as string[]).filter((k) => k in model);
      if (Object.keys(model).length === 0) return fc.dictionary(hostileString(ids), hostileJson(ids), { maxKeys: 3 });
      return fc.record(model, { requiredKeys: required });
    }
    default:
      return hostileJson(ids);
  }
}

/** A path segment: a real id, a hostile string (escaped, as a client would send it), or a raw hostile escape. */
function segment(ids: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...(ids.length > 0 ? ids : ['x'])) },
    { weight: 3, arbitrary: hostileString(ids).filter((s) => s.isWellFormed()).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('0', '-1', 'abc', '1.5', '1e3', '%00', '%ZZ', '%ED%A0%80', '..', '%2e%2e', 'a'.repeat(2000), '1', '2', '99999999999999999999') },
  );
}

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/scim+json', 'multipart/form-data; boundary=x', ''];

/** A body: JSON text of a value (sometimes with a lone surrogate escape spliced in), or raw garbage. */
function bodyText(value: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: value.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: value.map((v) => (JSON.stringify(v) ?? 'null').replace(/"([^"\\]*)"/, '"$1\\ud800"')) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom('{', '[]', '[{}]', '{"a":', 'null', '"x"', '1', '{"__proto__":{"admin":true}}', `${'['.repeat(5000)}${']'.repeat(5000)}`)) },
  );
}

function authHeader(ctx: FuzzContext, preferred: string): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constant({ authorization: `Bearer ${preferred}` }) },
    { weight: 1, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer x', `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${ctx.adminToken}x`, `bearer ${preferred}`, `DPoP ${preferred}`).map((a) => ({ authorization: a })) },
  );
}

function adminOperations(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const operations: fc.Arbitrary<FuzzRequest>[] = [];
  for (const [template, methods] of Object.entries(ctx.openapi.paths)) {
    if (!template.startsWith('/api/v1/') && !template.startsWith('/access/v1/')) continue;
    for (const [method, operation] of Object.entries(methods)) {
      const schema = operation.requestBody?.content['application/json']?.schema;
      const names = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      operations.push(
        fc.record({
          segments: fc.tuple(...names.map(() => segment(ctx.ids))),
          query: fc.dictionary(fc.constantFrom('limit', 'cursor', 'email', 'status', 'ownerId', 'after', 'kind', 'tag', 'explain', 'state', 'x'), hostileString(ctx.ids).filter((s) => s.isWellFormed()), { maxKeys: 3 }),
          body: bodyText(fromSchema(schema, ctx.ids)),
          type: fc.oneof({ weight: 9, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
          auth: authHeader(ctx, ctx.adminToken),
          verb: fc.oneof({ weight: 19, arbitrary: fc.constant(method.toUpperCase()) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') }),
        }).map(({ segments, query, body, type, auth, verb }) => {
          let path = template;
          names.forEach((name, i) => (path = path.replace(`{${name}}`, segments[i]!)));
          const search = new URLSearchParams(query).toString();
          const sendsBody = verb !== 'GET' && verb !== 'HEAD' && verb !== 'OPTIONS';
          return {
            family: template.startsWith('/access/') ? 'authzen' : 'admin',
            route: template,
            method: verb,
            path: search ? `${path}?${search}` : path,
            headers: { ...auth, ...(sendsBody && { 'content-type': type }) },
            ...(sendsBody && { body }),
          };
        }),
      );
    }
  }
  return fc.oneof(...operations);
}

function scimRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
  const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
  const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
  const s = hostileString(ctx.ids);
  const user = fc.record({ schemas: fc.constant([USER]), userName: s, active: fc.oneof(fc.boolean(), s), name: fc.record({ givenName: s, familyName: s }, { requiredKeys: [] }), emails: fc.array(fc.record({ value: s, primary: fc.boolean() }), { maxLength: 2 }), displayName: s, externalId: s }, { requiredKeys: ['schemas', 'userName'] });
  const group = fc.record({ schemas: fc.constant([GROUP]), displayName: s, members: fc.array(fc.record({ value: s }), { maxLength: 3 }) }, { requiredKeys: ['schemas'] });
  const patch = fc.record({ schemas: fc.constant([PATCH]), Operations: fc.array(fc.record({ op: fc.constantFrom('add', 'remove', 'replace', 'Add', 'REPLACE', 'x'), path: fc.oneof(s, fc.constantFrom('active', 'members', 'members[value eq "x"]', 'emails[type eq "work"].value', 'name.givenName', 'displayName')), value: hostileJson(ctx.ids) }, { requiredKeys: ['op'] }), { maxLength: 3 }) });
  return fc
    .record({
      resource: fc.constantFrom('Users', 'Groups'),
      id: segment(ctx.ids),
      method: fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
      filter: fc.option(fc.oneof(s, fc.constantFrom('userName eq "a"', 'displayName co "x" or userName sw "y"', 'members[value eq "x"]', '(((((a eq 1)))))', 'userName eq "a" or '.repeat(40))), { nil: undefined }),
      body: bodyText(fc.oneof(user, group, patch, hostileJson(ctx.ids))),
      auth: authHeader(ctx, ctx.scimToken),
      withId: fc.boolean(),
      ifMatch: fc.option(fc.constantFrom('W/"x"', '*', '"', ''), { nil: undefined }),
    })
    .map(({ resource, id, method, filter, body, auth, withId, ifMatch }) => {
      const base = `/scim/v2/${resource}${withId || method !== 'GET' && method !== 'POST' ? `/${id}` : ''}`;
      const sendsBody = method !== 'GET' && method !== 'DELETE';
      return {
        family: 'scim',
        route: `/scim/v2/${resource}${base.endsWith(resource) ? '' : '/{id}'}`,
        method,
        path: filter !== undefined && method === 'GET' && filter.isWellFormed() ? `${base}?${new URLSearchParams({ filter })}` : base,
        headers: { ...auth, ...(sendsBody && { 'content-type': 'application/scim+json' }), ...(ifMatch !== undefined && { 'if-match': ifMatch }) },
        ...(sendsBody && { body }),
      };
    });
}

function oauthRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const s = hostileString(ctx.ids).filter((x) => x.isWellFormed());
  const form = fc.dictionary(fc.constantFrom('grant_type', 'client_id', 'client_secret', 'scope', 'resource', 'audience', 'token', 'token_type_hint', 'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'assertion', 'client_assertion', 'client_assertion_type', 'requested_token_type', 'code', 'redirect_uri', 'x'), fc.oneof(s, fc.constantFrom(ctx.mcpToken, 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', SAFE_URLS[0]!)), { maxKeys: 6 });
  return fc
    .record({
      path: fc.constantFrom('/oauth/token', '/oauth/token', '/oauth/introspect', '/oauth/revoke', '/oauth/auth', '/oauth/jwks', '/oauth/token-info', '/oauth/delegations', '/oauth/reg', '/oauth/interaction/x', '/oauth/interaction/x/login', '/oauth/certificates', '/oauth/ca', '/oauth/token/introspection', '/oauth/nothing'),
      method: fc.constantFrom('POST', 'POST', 'GET', 'OPTIONS', 'PUT'),
      form,
      json: fc.boolean(),
      basic: fc.option(fc.tuple(s, s).map(([a, b]) => `Basic ${Buffer.from(`${encodeURIComponent(a)}:${encodeURIComponent(b)}`).toString('base64')}`), { nil: undefined }),
      origin: fc.option(fc.constantFrom('https://evil.invalid', 'null', ctx.baseUrl), { nil: undefined }),
    })
    .map(({ path, method, form, json, basic, origin }) => {
      const encoded = new URLSearchParams(form).toString();
      const sendsBody = method === 'POST' || method === 'PUT';
      return {
        family: 'oauth',
        route: path,
        method,
        path: method === 'GET' ? `${path}?${encoded}` : path,
        headers: { ...(basic !== undefined && { authorization: basic }), ...(origin !== undefined && { origin }), ...(method === 'OPTIONS' && { 'access-control-request-method': 'POST' }), ...(sendsBody && { 'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded' }) },
        ...(sendsBody && { body: json ? JSON.stringify(form) : encoded }),
      };
    });
}

function mcpRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  const s = hostileString(ctx.ids);
  const params = fc.oneof(
    fc.record({ name: fc.oneof(s, fc.constantFrom('echo', 'crm_lookup', 'send_email')), arguments: hostileJson(ctx.ids) }, { requiredKeys: [] }),
    fc.record({ uri: s, cursor: s }, { requiredKeys: [] }),
    hostileJson(ctx.ids),
  );
  const message = fc.record(
    {
      jsonrpc: fc.oneof({ weight: 9, arbitrary: fc.constant('2.0') }, { weight: 1, arbitrary: hostileJson(ctx.ids) }),
      id: fc.oneof(fc.integer(), s, fc.constant(null)),
      method: fc.oneof(fc.constantFrom('tools/call', 'tools/call', 'tools/list', 'resources/read', 'resources/list', 'prompts/get', 'prompts/list', 'ping', 'initialize', 'notifications/initialized', 'notifications/cancelled', 'completion/complete', 'logging/setLevel', 'sampling/createMessage'), s),
      params,
    },
    { requiredKeys: ['jsonrpc'] },
  );
  return fc
    .record({
      server: fc.oneof({ weight: 9, arbitrary: fc.constant('demo') }, { weight: 1, arbitrary: segment(ctx.ids) }),
      body: bodyText(fc.oneof({ weight: 4, arbitrary: message }, { weight: 1, arbitrary: fc.array(message, { minLength: 1, maxLength: 4 }) })),
      session: fc.oneof({ weight: 9, arbitrary: fc.constant(ctx.mcpSession) }, { weight: 1, arbitrary: fc.constantFrom('', 'x', 'a'.repeat(300)) }),
      auth: authHeader(ctx, ctx.mcpToken),
      method: fc.oneof({ weight: 9, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'OPTIONS', 'PATCH') }),
      protocol: fc.constantFrom('2025-06-18', '2025-03-26', '1999-01-01'),
      accept: fc.constantFrom('application/json, text/event-stream', 'application/json', 'text/event-stream', '*/*'),
    })
    .map(({ server, body, session, auth, method, protocol, accept }) => ({
      family: 'mcp',
      route: '/mcp/{server}',
      method,
      path: `/mcp/${server}`,
      headers: { ...auth, 'mcp-session-id': session, 'mcp-protocol-version': protocol, accept, ...(method === 'POST' && { 'content-type': 'application/json' }) },
      ...(method === 'POST' && { body }),
    }));
}

function documentRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(fc.constantFrom('/healthz', '/readyz', '/api/v1/openapi.json', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp/demo', '/.well-known/authzen-configuration', '/.well-known/nothing', '/', '/api', '/api/v1', '/api/v1/', '/scim/v2', '/scim/v2/ServiceProviderConfig', '/scim/v2/Schemas', '/scim/v2/ResourceTypes'), segment(ctx.ids), fc.constantFrom('GET', 'HEAD', 'POST', 'OPTIONS'))
    .map(([path, extra, method]) => ({ family: 'documents', route: path, method, path: path.endsWith('/') ? `${path}${extra}` : path, headers: { authorization: `Bearer ${ctx.adminToken}` } }));
}

/** One arbitrary over every route family. */
export function fuzzRequests(ctx: FuzzContext): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    { weight: 5, arbitrary: adminOperations(ctx) },
    { weight: 2, arbitrary: scimRequests(ctx) },
    { weight: 2, arbitrary: oauthRequests(ctx) },
    { weight: 3, arbitrary: mcpRequests(ctx) },
    { weight: 1, arbitrary: documentRequests(ctx) },
  );
}

/** What is wrong with an answer, by the rules of its family; undefined when it is a clean one. */
export async function judge(request: FuzzRequest, response: Response): Promise<string | undefined> {
  const text = await response.text();
  // The one 5xx that is not Mandate's: asked to discover the tools of an upstream the fuzzer itself
  // registered at a closed port, Mandate reports that upstream's failure as a bad gateway.
  if (response.status === 502 && request.route.endsWith('/discover') && text.includes('"GATEWAY_DISCOVERY_FAILED"')) return undefined;
  if (response.status >= 500) return `${response.status} ${text.slice(0, 300)}`;
  if (response.status < 400 || request.method === 'HEAD') return undefined;
  const type = response.headers.get('content-type') ?? '';
  const parse = (): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const family = request.path.startsWith('/scim/') ? 'scim' : request.family;
  switch (family) {
    case 'admin':
    case 'authzen':
    case 'documents': {
      // A route that does not exist or a method it does not have can be a bare 404/405; everything else is problem+json with a code.
      if (response.status === 404 || response.status === 405) return undefined;
      if (!type.includes('application/problem+json') || typeof parse()?.code !== 'string') return `refusal ${response.status} is not problem+json with a code: ${type} ${text.slice(0, 200)}`;
      return undefined;
    }
    case 'scim': {
      if (response.status === 404 || response.status === 405) return undefined;
      const body = parse();
      if (!body || (body.status !== String(response.status) && typeof body.code !== 'string')) return `SCIM refusal ${response.status} is not a SCIM error: ${text.slice(0, 200)}`;
      return undefined;
    }
    case 'oauth':
    case 'mcp':
      // OAuth errors are RFC 6749 JSON, interaction pages HTML, the gateway JSON-RPC or problem+json: any body, never a 5xx.
      return undefined;
    default:
      return undefined;
  }
}

export async function send(ctx: FuzzContext, request: FuzzRequest): Promise<Response> {
  return fetch(`${ctx.baseUrl}${request.path}`, {
    method: request.method,
    headers: request.headers,
    ...(request.body !== undefined && { body: request.body }),
    redirect: 'manual',
    signal: AbortSignal.timeout(20_000),
  });
}
