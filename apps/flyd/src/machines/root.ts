import { chmodSync, cpSync, lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { flydError } from '../errors.js';
import type { ResolvedImage } from '../images/resolve.js';
import type { MachineConfig } from './machine-store.js';

/** A file of a machine config, as Fly's clients send it (`raw_value` is base64). */
interface FileConfig {
  guest_path?: unknown;
  raw_value?: unknown;
  secret_name?: unknown;
  mode?: unknown;
}

/** The largest file a config may carry (it travels in every API call and version). */
const fileBytesMax = 1024 * 1024;

/** Where a guest path lands inside a machine's root; a path that leaves it is refused. */
export function inRoot(root: string, guestPath: string, what: string): string {
  const relative = normalize(guestPath).replace(/^\/+/, '');
  if (!guestPath.startsWith('/') || relative === '' || relative.startsWith('..')) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `${what} ${JSON.stringify(guestPath)} must be an absolute file path like /etc/app.conf`,
    );
  }
  return join(root, relative);
}

/**
 * Refuses `config.files` flyd cannot write, before anything is created. The schema
 * (@fleet/machine-config) has checked their shape; this checks what only this worker knows: the
 * image the files are written over (`imageDir`) and the volume mounted beside them.
 */
export function checkFiles(config: MachineConfig, imageDir?: string): void {
  const files = config.files as unknown;
  if (files === undefined || files === null) return;
  if (!Array.isArray(files)) throw flydError('FLYD_ERR_BAD_CONFIG', 'config.files must be a list');
  files.forEach((file: FileConfig, at) => {
    const what = `config.files[${at}]`;
    if (typeof file?.guest_path !== 'string') {
      throw flydError('FLYD_ERR_BAD_CONFIG', `${what}.guest_path must be a string`);
    }
    inRoot('/', file.guest_path, `${what}.guest_path`);
    if (file.secret_name !== undefined && file.secret_name !== null) {
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        `${what}: secret_name is not supported yet (a file from an app secret); send raw_value`,
      );
    }
    if (typeof file.raw_value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(file.raw_value)) {
      throw flydError('FLYD_ERR_BAD_CONFIG', `${what}.raw_value must be base64`);
    }
    if (Buffer.byteLength(file.raw_value, 'base64') > fileBytesMax) {
      throw flydError('FLYD_ERR_BAD_CONFIG', `${what} is over ${fileBytesMax} bytes`);
    }
    const mode = file.mode;
    if (
      mode !== undefined &&
      (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > 0o7777)
    ) {
      throw flydError('FLYD_ERR_BAD_CONFIG', `${what}.mode must be a file mode like 420 (0644)`);
    }
    if (imageDir !== undefined) checkOverImage(imageDir, file.guest_path, `${what}.guest_path`);
    const mountPath = (config.mounts as { path?: unknown }[] | undefined)?.[0]?.path;
    if (typeof mountPath === 'string' && isUnder(file.guest_path, mountPath)) {
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        `${what}.guest_path ${JSON.stringify(file.guest_path)} is in the volume mounted at ${mountPath}: a file of the config goes in the machine's root, not in its volume`,
      );
    }
  });
}

/** Whether `path` is `folder` or inside it (both absolute). */
function isUnder(path: string, folder: string): boolean {
  const base = normalize(folder).replace(/\/+$/, '');
  const target = normalize(path);
  return target === base || target.startsWith(`${base}/`);
}

/**
 * A file is written into a fresh copy of the image: refused where that copy has a folder (it
 * cannot become a file), where a folder on its way is a file of the image, or where the way
 * passes a symbolic link (the write could leave the machine's root). `what` names the field.
 */
function checkOverImage(imageDir: string, guestPath: string, what: string): void {
  const parts = normalize(guestPath).split('/').filter(Boolean);
  for (const [at, part] of parts.entries()) {
    const shown = `/${parts.slice(0, at + 1).join('/')}`;
    const entry = lstatSync(join(imageDir, ...parts.slice(0, at), part), { throwIfNoEntry: false });
    if (!entry) return; // nothing of the image from here on: the folders are made
    const last = at === parts.length - 1;
    const problem = entry.isSymbolicLink()
      ? `${shown} is a link in the image`
      : last && entry.isDirectory()
        ? `${shown} is a folder of the image`
        : !last && !entry.isDirectory()
          ? `${shown} is a file of the image, not a folder`
          : undefined;
    if (problem)
      throw flydError(
        'FLYD_ERR_BAD_CONFIG',
        `${what} ${JSON.stringify(guestPath)}: ${problem}; a file cannot be written there`,
      );
  }
}

/**
 * Refuses a mount path where the image has a folder: the volume's link replaces what is there at
 * every launch (a file of the image goes), and a folder cannot be replaced by a link.
 */
export function checkMountOverImage(config: MachineConfig, imageDir: string): void {
  const mountPath = (config.mounts as { path?: unknown }[] | undefined)?.[0]?.path;
  if (typeof mountPath !== 'string') return;
  const relative = normalize(mountPath).replace(/^\/+|\/+$/g, '');
  if (relative === '' || relative.startsWith('..')) return; // the schema refuses these
  const entry = lstatSync(join(imageDir, relative), { throwIfNoEntry: false });
  if (entry?.isDirectory()) {
    throw flydError(
      'FLYD_ERR_BAD_CONFIG',
      `config.mounts[0].path ${JSON.stringify(mountPath)} is a folder of the image: mount the volume at a path the image does not use`,
    );
  }
}

/**
 * Fills a machine's empty root (`MachineDirs.freshRoot`): a copy of its image's files, then the
 * config's files, at every launch. As on Fly, the root is ephemeral — what a machine writes
 * outside a volume is gone after a restart — and each machine has its own: it is the machine's
 * working directory and HOME.
 */
export function prepareRoot(root: string, image: ResolvedImage, config: MachineConfig): void {
  cpSync(image.dir, root, { recursive: true, verbatimSymlinks: true });
  // Its TMPDIR (environment.ts), unless the image has a tmp of its own.
  if (!lstatSync(join(root, 'tmp'), { throwIfNoEntry: false })) mkdirSync(join(root, 'tmp'));
  for (const file of (config.files ?? []) as FileConfig[]) {
    const path = inRoot(root, file.guest_path as string, 'config.files guest_path');
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, Buffer.from(file.raw_value as string, 'base64'));
    chmodSync(path, (file.mode as number | undefined) ?? 0o644);
  }
}
