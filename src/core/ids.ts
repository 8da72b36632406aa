import { randomBytes } from 'node:crypto';

// Crockford base32: ids sort by creation time (48-bit millisecond prefix, as in ULID) and carry
// 80 random bits, so they are unguessable and need no coordination between replicas.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function newId(prefix: string, now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = randomBytes(16);
  let rest = '';
  for (let i = 0; i < 16; i++) rest += ALPHABET[random[i]! % 32];
  return `${prefix}_${time}${rest}`;
}

export const ID_PATTERN = /^[a-z]{2,6}_[0-9a-z]{26}$/;
