import { createHmac } from 'node:crypto';
import { MandateError } from '../core/errors.ts';

/**
 * The signature scheme of Mandate's outgoing webhooks (the same as the audit stream):
 * `Mandate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Receivers recompute it
 * with their secret, compare in constant time and reject stale `t` (replay).
 */
export function signatureHeader(secret: string, body: string, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** A webhook URL Mandate may call: http(s) only, and https unless `allowHttp` (dev, tests). */
export function assertWebhookUrl(url: string, allowHttp: boolean): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MandateError('WEBHOOK_URL_INVALID', 'webhookUrl is not a URL', 400);
  }
  if (parsed.protocol !== 'https:' && !(allowHttp && parsed.protocol === 'http:')) {
    throw new MandateError('WEBHOOK_URL_INSECURE', allowHttp ? 'webhookUrl must be http(s)' : 'webhookUrl must be https', 400);
  }
  if (parsed.username || parsed.password) throw new MandateError('WEBHOOK_URL_INVALID', 'webhookUrl must not carry credentials', 400);
}

export async function postSigned(url: string, secret: string, payload: unknown, headers: Record<string, string>, nowMs: number, timeoutMs = 10_000): Promise<void> {
  const body = JSON.stringify(payload);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'mandate-signature': signatureHeader(secret, body, nowMs), ...headers },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body?.cancel();
  if (response.status < 200 || response.status >= 300) throw new Error(`receiver answered ${response.status}`);
}
