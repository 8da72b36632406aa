import { describe, expect, it } from 'vitest';
import { retryWhenAnotherSchemaVanishes } from './vanished-schema.ts';

describe('retryWhenAnotherSchemaVanishes', () => {
  it('retries when another schema vanished during introspection, and only then', async () => {
    let calls = 0;
    const flaky = async () => {
      calls += 1;
      if (calls < 3) throw new Error('migration failed: schema "t_other" does not exist');
      return 'migrated';
    };
    await expect(retryWhenAnotherSchemaVanishes(flaky, 't_mine')).resolves.toBe('migrated');
    expect(calls).toBe(3);

    // Our own schema missing, or any other error, is a real failure: no retry.
    calls = 0;
    const own = async () => {
      calls += 1;
      throw new Error('schema "t_mine" does not exist');
    };
    await expect(retryWhenAnotherSchemaVanishes(own, 't_mine')).rejects.toThrow('t_mine');
    expect(calls).toBe(1);
    calls = 0;
    await expect(retryWhenAnotherSchemaVanishes(async () => { calls += 1; throw new Error('syntax error'); }, 't_mine')).rejects.toThrow('syntax');
    expect(calls).toBe(1);

    // Not forever.
    calls = 0;
    await expect(retryWhenAnotherSchemaVanishes(async () => { calls += 1; throw new Error('schema "x" does not exist'); }, undefined, 4)).rejects.toThrow();
    expect(calls).toBe(4);
  });
});
