export { KeyRing, publicKeys, signEd25519, verifyEd25519, type SigningKey } from './key-ring.ts';
