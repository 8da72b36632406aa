import { expect } from 'vitest';

/** A refusal is a 4xx with problem+json and a string code; never a 5xx. Consumes the body. */
export async function expectCleanRefusal(response: Response): Promise<void> {
  expect(response.status).toBeLessThan(500);
  if (response.status >= 400) {
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    const body = (await response.json()) as { code?: unknown };
    expect(typeof body.code).toBe('string');
  } else {
    await response.arrayBuffer();
  }
}
