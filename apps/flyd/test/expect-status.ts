import { present } from '@fleet/service/invariant';
import { expect } from 'vitest';
import { type CallAnswer, call } from './flyd-fixture.js';

/** Asserts one call's status, showing its answer when it is another; the answer. */
export function expectStatus(
  answer: CallAnswer | undefined,
  status: number,
  what: string,
): CallAnswer {
  expect(answer?.status, `${what}: ${JSON.stringify(answer?.body)}`).toBe(status);
  return present(answer, 'answer');
}

/** One call to flyd's API that must answer `status` (200 unless said): its answer. */
export async function callExpecting(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  status = 200,
): Promise<CallAnswer> {
  return expectStatus(await call(base, method, path, body), status, `${method} ${path}`);
}
