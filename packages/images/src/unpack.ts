import { mkdirSync } from 'node:fs';
import { extract } from 'tar';
import {
  type ArchiveSummary,
  defaultUnpackLimits,
  inspectArchive,
  type UnpackLimits,
} from './inspect.js';

/**
 * Unpacks an image archive into `into` (created; it should be empty) after inspecting it whole:
 * nothing is written unless every entry is safe and within the limits. The extraction itself
 * keeps tar's own guards on (no absolute paths, no `..`, no writing through links, no owners).
 */
export async function unpackImage(
  file: string,
  into: string,
  limits: UnpackLimits = defaultUnpackLimits,
): Promise<ArchiveSummary> {
  const summary = await inspectArchive(file, limits);
  mkdirSync(into, { recursive: true });
  await extract({ file, cwd: into, strict: true, preserveOwner: false, preservePaths: false });
  return summary;
}
