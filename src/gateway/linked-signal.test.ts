import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { linkedSignal } from './linked-signal.ts';

describe('linkedSignal', () => {
  it('aborts with the reason of the first source that aborts, and leaves no listener behind', () => {
    const session = new AbortController();
    const request = new AbortController();
    const link = linkedSignal([session.signal, request.signal]);
    expect(link.signal.aborted).toBe(false);
    session.abort('killed');
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe('killed');
    expect(getEventListeners(request.signal, 'abort')).toHaveLength(0);
  });

  it('once disposed, a long-lived source holds nothing of it, however many calls it served', () => {
    const session = new AbortController();
    const links = Array.from({ length: 100 }, () => linkedSignal([session.signal]));
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(100);
    for (const l of links) l.dispose();
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(0);
    session.abort();
    expect(links.some((l) => l.signal.aborted)).toBe(false);
  });

  it('is aborted at once when a source already is', () => {
    const link = linkedSignal([AbortSignal.abort('gone'), new AbortController().signal]);
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe('gone');
  });
});
