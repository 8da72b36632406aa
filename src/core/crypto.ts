import { createCipheriv, createDecipheriv, createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MandateError } from './errors.ts';

export function sha256Hex(data: string | Uint8Array): string {
  // One-shot `hash`: no Hash object per call (the audit chain and every gateway call hash).
  return hash('sha256', data, 'hex');
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Compares secrets without leaking, through timing, how long a matching prefix is. */
export function constantTimeEqual(a: string, b: string): boolean {
  // Hash both sides first so that the comparison time does not depend on the lengths either.
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right) && a.length === b.length;
}

/**
 * Authenticated encryption of secrets at rest (AES-256-GCM). The output is self-describing
 * (`v1.<iv>.<tag>.<ciphertext>`, base64url) so keys and formats can rotate later.
 * `context` is bound as additional data: a ciphertext moved to another row does not decrypt.
 */
export function seal(key: Uint8Array, plaintext: string | Uint8Array, context = ''): string {
  if (key.length !== 32) throw new MandateError('CRYPTO_KEY_INVALID', 'an encryption key must be 32 bytes', 500);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
}

export function open(key: Uint8Array, sealed: string, context = ''): Buffer {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== 'v1' || iv === undefined || tag === undefined || body === undefined) {
    throw new MandateError('CRYPTO_SEALED_INVALID', 'sealed value has an unknown format', 500);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
  } catch {
    throw new MandateError('CRYPTO_SEALED_INVALID', 'sealed value failed authentication (wrong key or tampered)', 500);
  }
}
