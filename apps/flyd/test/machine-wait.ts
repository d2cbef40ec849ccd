import { expect } from 'vitest';
import { call } from './flyd-fixture.js';

/**
 * Waits through flyd's `wait` until the machine is in `state` and the run that took it there is
 * over (polling its view can see `started` while the create run still holds the machine, so a
 * next operation would be a 409 conflict).
 */
export async function settledIn(base: string, id: string, state: string): Promise<void> {
  const answer = await call(base, 'GET', `/v1/machines/${id}/wait?state=${state}&timeout=30`);
  expect(answer?.status, `machine ${id} ${state}`).toBe(200);
}
