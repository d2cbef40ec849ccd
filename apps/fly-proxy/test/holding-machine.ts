import { createServer } from 'node:http';
import { listening } from './relay-fixture.js';

/** A machine that answers `/slow` only when released, anything else at once. */
export async function startHoldingMachine() {
  const held: (() => void)[] = [];
  const started = await listening(
    createServer((req, res) => {
      const answer = () => {
        res.setHeader('content-type', 'text/plain');
        res.end(`done ${req.url}`);
      };
      if (req.url === '/slow') held.push(answer);
      else answer();
    }),
  );
  return {
    ...started,
    held: () => held.length,
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
  };
}
