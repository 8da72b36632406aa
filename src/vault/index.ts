/** Encrypted secrets (envelope encryption) and their release to the code that injects them upstream. */
export { Vault, VAULT_CHANGED } from './vault.ts';
