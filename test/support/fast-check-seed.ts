/**
 * Property tests explore new inputs on every developer run, but CI must judge the code, not the dice:
 * under `CI` (or with `FC_SEED` set) every `fc.assert` starts from one fixed, printed seed, so a red CI
 * run is reproducible and a green one does not depend on luck. A failure still prints the seed and
 * path to replay it (`FC_SEED=<seed> npx vitest run <file>`).
 */
import fc from 'fast-check';

const fixed = process.env.FC_SEED ?? (process.env.CI ? '20261123' : undefined);
if (fixed !== undefined) fc.configureGlobal({ seed: Number(fixed) });
