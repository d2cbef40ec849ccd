import { readFileSync } from 'node:fs';
import { present } from './invariant.js';

/**
 * The error codes a workspace README documents: the first column of the table under its
 * "Error codes" heading. Each workspace's tests compare it with its error registry, so the two
 * cannot drift apart.
 */
export function errorCodesInReadme(readmePath: string): string[] {
  const text = readFileSync(readmePath, 'utf8');
  const section = /^#+ Error codes\s*$([\s\S]*?)(?=^#+ |(?![\s\S]))/m.exec(text)?.[1] ?? '';
  return [...section.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/gm)].map((match) =>
    present(match[1], 'the code of a table row'),
  );
}
