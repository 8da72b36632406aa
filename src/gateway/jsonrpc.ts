import { hasLoneSurrogate, mayHoldSurrogates } from '../core/json-text.ts';

/** Just enough JSON-RPC 2.0 for the proxy to see what passes through it (JSON-RPC 2.0 §4, §5). */
export type RpcId = string | number;

export interface RpcMessage {
  jsonrpc: '2.0';
  id?: RpcId | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** A refusal says which JSON-RPC error it is: -32700 parse error, or -32602 invalid params (with the message's id when there is one). */
export type ParsedBody = { ok: true; messages: RpcMessage[]; batch: boolean } | { ok: false; reason: string; code?: number; id?: RpcId | null };

export const RPC_INVALID_PARAMS = -32602;

/** Parses a POST body: one message or (older protocol versions) a batch. Anything else is refused, never forwarded blind. */
export function parseBody(text: string): ParsedBody {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the body is not valid JSON' };
  }
  // What the gateway decides must be what the upstream reads: with a repeated key, JSON.parse takes the
  // last value and other parsers the first (`"name":"hidden_admin","name":"echo"`, or a second `method`
  // turning a tools/call into a ping for the gateway only). RFC 8259 §4 leaves that undefined: refused.
  if (hasDuplicateKey(text)) return { ok: false, reason: 'an object repeats a member name' };
  const batch = Array.isArray(raw);
  const items = batch ? (raw as unknown[]) : [raw];
  if (items.length === 0 || items.length > 100) return { ok: false, reason: 'a batch must hold 1 to 100 messages' };
  for (const item of items) {
    if (!isMessage(item)) return { ok: false, reason: 'not a JSON-RPC 2.0 message' };
  }
  // A lone surrogate cannot be stored, audited or matched against a tool name faithfully: refused
  // before anything is decided (src/core/json-text.ts). The scan keeps the walk off the common path.
  if (mayHoldSurrogates(text)) {
    const bad = items.find((item) => hasLoneSurrogate(item)) as RpcMessage | undefined;
    if (bad) return { ok: false, reason: 'Invalid params: strings must be well-formed Unicode (no lone UTF-16 surrogates)', code: RPC_INVALID_PARAMS, id: batch ? null : (bad.id ?? null) };
  }
  return { ok: true, messages: items as RpcMessage[], batch };
}

/** Whether some object in this JSON text (valid JSON: JSON.parse accepted it) has a member name twice, compared after unescaping. */
export function hasDuplicateKey(text: string): boolean {
  /** One entry per open object (its names so far) or array (null). */
  const open: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: find its closing quote (a backslash always escapes the next character).
      let end = i + 1;
      while (text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c ? 2 : 1;
      const names = open.at(-1);
      if (expectName && names) {
        const raw = text.slice(i, end + 1);
        const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (names.has(name)) return true;
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b) {
      open.push(new Set());
      expectName = true;
    } else if (c === 0x5b) {
      open.push(null);
      expectName = false;
    } else if (c === 0x7d || c === 0x5d) {
      open.pop();
      expectName = false;
    } else if (c === 0x2c) {
      expectName = open.at(-1) instanceof Set;
    }
  }
  return false;
}

function isMessage(value: unknown): value is RpcMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') return false;
  if (m.id !== undefined && m.id !== null && typeof m.id !== 'string' && !(typeof m.id === 'number' && Number.isFinite(m.id))) return false;
  if (m.method !== undefined) {
    if (typeof m.method !== 'string' || m.method.length === 0 || m.method.length > 200) return false;
    if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null || Array.isArray(m.params))) return false;
    return true;
  }
  // A response (to a server-to-client request such as sampling or elicitation).
  return m.id !== undefined && ('result' in m || 'error' in m);
}

export const isRequest = (m: RpcMessage): boolean => m.method !== undefined && m.id !== undefined && m.id !== null;

/**
 * Protocol versions whose sessions may send JSON-RPC batches: MCP 2025-03-26 added them and 2025-06-18
 * removed them again. 2024-11-05 never had them over Streamable HTTP (that transport came with
 * 2025-03-26). A version the gateway does not know, or has not seen negotiated, gets none (fail closed).
 */
const BATCH_VERSIONS: ReadonlySet<string> = new Set(['2025-03-26']);

export const allowsBatches = (protocolVersion: string | undefined): boolean => protocolVersion !== undefined && BATCH_VERSIONS.has(protocolVersion);

/** MCP reserves -32000 to -32099 for implementation errors; these are Mandate's. */
export const RPC_DENIED = -32003;
export const RPC_APPROVAL_DENIED = -32004;
export const RPC_APPROVAL_TIMEOUT = -32005;
export const RPC_RATE_LIMITED = -32006;
export const RPC_CANCELLED = -32007;
export const RPC_UPSTREAM = -32008;

export function rpcError(id: RpcId | null | undefined, code: number, message: string, data?: Record<string, unknown>): RpcMessage {
  return { jsonrpc: '2.0', id: id ?? null, error: { code, message, ...(data && { data }) } };
}
