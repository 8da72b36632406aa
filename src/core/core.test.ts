import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalJson } from './canonical-json.ts';
import { constantTimeEqual, open, seal } from './crypto.ts';
import { ID_PATTERN, newId } from './ids.ts';
import { loadConfig } from './config.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('canonical JSON (RFC 8785)', () => {
  it('RFC8785-3.2.3 sorts members by UTF-16 code units and is independent of insertion order', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], '\u20ac': 1, '\r': 2, '1': 3 })).toBe('{"\\r":2,"1":3,"a":[true,null,"x"],"b":1,"\u20ac":1}');
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(record));
      }),
    );
  });

  it('matches a plain reference encoding (sorted entries, JSON.stringify for primitives) on any JSON value', () => {
    const reference = (v: unknown): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v);
      if (Array.isArray(v)) return `[${v.map((x) => reference(x ?? null)).join(',')}]`;
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${reference(x)}`).join(',')}}`;
    };
    expect(canonicalJson({ '\uffff': 1, '😀': 2, a: undefined, b: [undefined, -0] })).toBe('{"b":[null,0],"😀":2,"\uffff":1}');
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
    );
  });

  it('RFC8785-3.2.2 round-trips: parsing the canonical form gives back the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('RFC8785-3.2.2.3 serializes numbers in their shortest ECMAScript form', () => {
    expect(canonicalJson([1e21, 1e-7, 0.1 + 0.2, -0, 100])).toBe('[1e+21,1e-7,0.30000000000000004,0,100]');
    expect(() => canonicalJson(Number.NaN)).toThrow();
  });
});

describe('secrets at rest', () => {
  it('seal/open round-trips and refuses another key or another context', () => {
    const key = randomBytes(32);
    fc.assert(
      fc.property(fc.string(), fc.string(), (plaintext, context) => {
        const sealed = seal(key, plaintext, context);
        expect(sealed).not.toContain(plaintext.length > 3 ? plaintext : '\u0000never');
        expect(open(key, sealed, context).toString('utf8')).toBe(plaintext);
        expect(() => open(randomBytes(32), sealed, context)).toThrow();
        expect(() => open(key, sealed, `${context}x`)).toThrow();
      }),
      { numRuns: 50 },
    );
  });

  it('constant-time comparison agrees with equality', () => {
    fc.assert(fc.property(fc.string(), fc.string(), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(a === b);
      }));
    expect(constantTimeEqual('same', 'same')).toBe(true);
  });
});

describe('ids', () => {
  it('are well-formed, unique and sort by creation time', () => {
    const a = newId('agt', 1_000);
    const b = newId('agt', 2_000);
    expect(a).toMatch(ID_PATTERN);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newId('agt'))).size).toBe(1000);
  });
});

describe('configuration', () => {
  const dataDir = () => mkdtempSync(join(tmpdir(), 'mandate-config-'));

  it('refuses to start in production without secrets or with an http public URL, naming each setting', () => {
    expect(() => loadConfig({ dataDir: dataDir() })).toThrow(/MANDATE_ADMIN_TOKEN.*MANDATE_MASTER_KEY.*MANDATE_PUBLIC_URL/);
    expect(() => loadConfig({ dataDir: dataDir(), adminToken: 'short', masterKey: randomBytes(32).toString('base64'), publicUrl: 'https://m.example.com' })).toThrow(/MANDATE_ADMIN_TOKEN/);
    const ok = loadConfig({ dataDir: dataDir(), adminToken: 'x'.repeat(40), masterKey: randomBytes(32).toString('base64'), publicUrl: 'https://m.example.com/' });
    expect(ok.publicUrl).toBe('https://m.example.com');
  });

  it('generates and keeps development secrets in the data directory', () => {
    const dir = dataDir();
    const first = loadConfig({ mode: 'dev', dataDir: dir });
    const second = loadConfig({ mode: 'dev', dataDir: dir });
    expect(first.adminToken).toBe(second.adminToken);
    expect(Buffer.from(first.masterKey).equals(Buffer.from(second.masterKey))).toBe(true);
  });

  it('rejects unknown and malformed settings with CONFIG_INVALID', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 })), (input) => {
        try {
          loadConfig({ mode: 'dev', dataDir: join(tmpdir(), 'mandate-config-prop'), ...(input as object) });
        } catch (error) {
          expect((error as { code?: string }).code).toBe('CONFIG_INVALID');
        }
      }),
      { numRuns: 100 },
    );
  });
});
