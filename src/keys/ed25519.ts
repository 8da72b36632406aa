import { createPublicKey, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

// Signing and verifying on their own, without the key ring's store: the embedded store's database
// thread signs audit checkpoints with them.

export function signEd25519(privateKey: KeyObject, message: string): string {
  return sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64url');
}

export function verifyEd25519(publicJwk: JsonWebKey, message: string, signature: string): boolean {
  try {
    const key = createPublicKey({ key: publicJwk, format: 'jwk' });
    return verify(null, Buffer.from(message, 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
