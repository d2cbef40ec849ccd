#!/usr/bin/env node
// The `fleet` bin. npm links a workspace's bins at `npm ci`, before anything is built, and skips
// one whose file does not exist yet: a bin naming dist/main.js left a fresh clone without
// `npx fleet` outside apps/cli (test/npx.test.ts). This file is committed; the command is the
// build's.
import { existsSync } from 'node:fs';

const built = new URL('../dist/main.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    'fleet is not built yet: run `npm run build` (or `npm start`) at the repository root\n',
  );
  process.exit(1);
}
await import(built.href);
