import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import '../../test/support/fast-check-seed.ts';
import { hasDuplicateKey, parseBody } from './jsonrpc.ts';

describe('hasDuplicateKey', () => {
  it('never flags what JSON.stringify wrote (its objects cannot repeat a name)', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      expect(hasDuplicateKey(JSON.stringify(value))).toBe(false);
    }), { numRuns: 500 });
  });

  it('flags a repeated name at any depth, also when one spelling is escaped, and not the same name in sibling objects', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), fc.jsonValue(), fc.jsonValue(), (name, a, b) => {
        const key = JSON.stringify(name);
        const escaped = `"${[...name].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
        expect(hasDuplicateKey(`{"params":{${key}:${JSON.stringify(a)}, ${escaped} : ${JSON.stringify(b)}}}`)).toBe(true);
        expect(hasDuplicateKey(`[{${key}:${JSON.stringify(a)}},{${key}:${JSON.stringify(b)}}]`)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('parseBody refuses a message with a repeated member name', () => {
    expect(parseBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hidden_admin","name":"echo"}}')).toMatchObject({ ok: false });
    expect(parseBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"method":"ping"}')).toMatchObject({ ok: false });
    expect(parseBody('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"name":"x"}}}')).toMatchObject({ ok: true });
  });
});
