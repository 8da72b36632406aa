import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README, withConfigTable } from '../../scripts/config-table.ts';
import { configFromEnvironment, loadConfig } from './config.ts';
import { SETTINGS } from './settings.ts';

describe('settings, declared once', () => {
  it("README's configuration table is the one the declarations make (run `npm run docs:config`)", () => {
    const doc = readFileSync(README, 'utf8');
    expect(withConfigTable(doc), 'README.md is stale: run `npm run docs:config`').toBe(doc);
  });

  it('each has its own environment variable, and each variable reaches its setting', () => {
    const envs = Object.values(SETTINGS).map((s) => s.env);
    expect(new Set(envs).size).toBe(envs.length);
    for (const [key, s] of Object.entries(SETTINGS)) {
      expect(Object.keys(configFromEnvironment({ [s.env]: '1' }))).toEqual([key]);
    }
  });

  it('every declared default is what a loaded configuration holds', () => {
    const config = loadConfig({ mode: 'dev', dataDir: `${process.env.TMPDIR ?? '/tmp'}/mandate-settings-test` });
    for (const [key, s] of Object.entries(SETTINGS)) {
      const declared = s.schema.safeParse(undefined);
      if (declared.success && declared.data !== undefined && key !== 'mode' && key !== 'dataDir') expect(config[key as keyof typeof config], key).toEqual(declared.data);
    }
  });
});
