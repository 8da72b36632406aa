import { describe, expect, it } from 'vitest';
import { LOCKS } from './locks.ts';

describe('advisory lock registry', () => {
  it('gives every purpose its own number', () => {
    const numbers = Object.values(LOCKS);
    expect(new Set(numbers).size).toBe(numbers.length);
  });
});
