import { systemClock, type Clock } from '../core/clock.ts';

/** A clock that follows another with an offset: tests move governance time forward without sleeping. */
export interface AdjustableClock extends Clock {
  advance(ms: number): void;
  /** Back to the underlying clock. */
  reset(): void;
}

export function adjustableClock(base: Clock = systemClock): AdjustableClock {
  let offset = 0;
  return {
    now: () => new Date(base.now().getTime() + offset),
    advance(ms: number) {
      offset += ms;
    },
    reset() {
      offset = 0;
    },
  };
}
