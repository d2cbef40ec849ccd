import type { Duplex } from 'node:stream';
import type { Airtime, Refusal } from './airtime.js';

/**
 * Airtime for a raw TCP tunnel of `app` (a public port passed through, a backhaul's tcp stream):
 * admits it, then charges each chunk either side reads and pauses that side while the app is in
 * debt. Call before the two are piped. Answers the refusal when the app is over its hard cap.
 */
export function chargeTunnel(
  airtime: Airtime | undefined,
  app: string,
  client: Duplex,
  machine: Duplex,
): Refusal | undefined {
  if (airtime === undefined) return undefined;
  const flows = airtime.admit(app, {
    pauseClient: () => client.pause(),
    resumeClient: () => client.resume(),
    pauseMachine: () => machine.pause(),
    resumeMachine: () => machine.resume(),
  });
  if ('code' in flows) return flows;
  client.on('data', (chunk: Buffer) => flows.in(chunk.length));
  machine.on('data', (chunk: Buffer) => flows.out(chunk.length));
  // A pipe resumes its source when the destination drains: a side Airtime holds is paused
  // again before it reads (the 'resume' event comes just before the stream flows).
  client.on('resume', () => {
    if (flows.holdsClient) client.pause();
  });
  machine.on('resume', () => {
    if (flows.holdsMachine) machine.pause();
  });
  client.once('close', () => flows.close());
  machine.once('close', () => flows.close());
  return undefined;
}
