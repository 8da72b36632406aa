export { KeyRing, publicKeys, type SigningKey } from './key-ring.ts';
export { signEd25519, verifyEd25519 } from './ed25519.ts';
