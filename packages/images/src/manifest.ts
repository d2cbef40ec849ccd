import { ImageError } from './errors.js';

/** The file at an image's root that describes how to run it. */
export const manifestFile = 'image.json';
/** The largest image.json read (it is a few lines). */
export const manifestBytesMax = 64 * 1024;

/** What image.json holds: the command a machine runs, its environment and the ports it serves. */
export interface ImageManifest {
  /** argv run in the image's root (`["node", "server.mjs"]`). */
  cmd: string[];
  /** Environment every machine of the image gets (a machine config's `env` overrides it). */
  env: Record<string, string>;
  /** TCP ports the image's process listens on (documentation for a deployer; not enforced). */
  ports: number[];
  description?: string;
}

const bad = (message: string) => new ImageError('IMAGE_ERR_BAD_MANIFEST', `image.json: ${message}`);

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((part) => typeof part === 'string');

/** Parses and checks image.json's text; every refusal names the field. */
export function parseManifest(text: string): ImageManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw bad(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad('must be a JSON object');
  }
  const { cmd, env = {}, ports = [], description } = value as Record<string, unknown>;
  if (!isStringList(cmd) || cmd.length === 0 || cmd[0] === '') {
    throw bad('cmd must be a non-empty list of strings (the argv to run)');
  }
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw bad('env must be an object of strings');
  }
  for (const [name, setting] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw bad(`env.${name} is not a variable name`);
    if (typeof setting !== 'string') throw bad(`env.${name} must be a string`);
  }
  if (
    !Array.isArray(ports) ||
    !ports.every((port) => Number.isInteger(port) && port >= 1 && port <= 65_535)
  ) {
    throw bad('ports must be a list of TCP ports (1-65535)');
  }
  if (description !== undefined && typeof description !== 'string') {
    throw bad('description must be a string');
  }
  return {
    cmd,
    env: env as Record<string, string>,
    ports: ports as number[],
    ...(description === undefined ? {} : { description }),
  };
}
