import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalJson } from '../core/canonical-json.ts';
import { sha256Hex } from '../core/crypto.ts';
import { hashRecord, hashRecordWithDetails } from './record.ts';

describe('record hash', () => {
  it('is the SHA-256 of the whole record in RFC 8785 form, however the details text was obtained', () => {
    const record = fc.record({
      seq: fc.nat(),
      ts: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      actor: fc.string({ unit: 'binary' }),
      action: fc.string({ unit: 'binary' }),
      target: fc.option(fc.string({ unit: 'binary' }), { nil: null }),
      outcome: fc.string(),
      details: fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()),
      prevHash: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
    });
    fc.assert(
      fc.property(record, (r) => {
        const expected = sha256Hex(canonicalJson({ seq: r.seq, ts: r.ts, actor: r.actor, action: r.action, target: r.target, outcome: r.outcome, details: r.details, prevHash: r.prevHash }));
        expect(hashRecord(r)).toBe(expected);
        expect(hashRecordWithDetails(r, canonicalJson(r.details))).toBe(expected);
      }),
    );
  });
});
