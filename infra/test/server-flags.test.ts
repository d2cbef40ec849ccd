import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const apps = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'apps');

// An operator starts a server from its README: the flags its tables name are the flags the
// server takes, and every flag it takes is in one of them. (The token flags became files and
// environment variables, and the READMEs kept `--token`: copied, that was "Unknown option".)
const servers: [app: string, subcommand: string[]][] = [
  ['corrosion', ['agent']],
  ['flyd', []],
  ['flaps', []],
  ['fly-proxy', []],
];

/** The flags named in the first cell of each row of the README's `| flag |` tables, in order. */
function documentedFlags(readme: string): string[][] {
  const tables: string[][] = [];
  let table: string[] | undefined;
  for (const line of readme.split('\n')) {
    if (/^\| flag \|/.test(line)) {
      table = [];
      tables.push(table);
    } else if (!line.startsWith('|')) table = undefined;
    else if (table && !line.startsWith('|---'))
      table.push(...(line.split('|')[1]?.match(/--[a-z0-9-]+\*?/g) ?? []));
  }
  return tables;
}

describe("each server's README", () => {
  for (const [app, subcommand] of servers) {
    it(`${app}: names the flags it takes, and no other`, () => {
      const main = join(apps, app, 'dist', 'main.js');
      const help = spawnSync(process.execPath, [main, ...subcommand, '--help'], {
        encoding: 'utf8',
      });
      expect(help.status, help.stderr).toBe(0);
      const offered = (help.stdout.match(/^\s+--[a-z0-9-]+/gm) ?? [])
        .map((flag) => flag.trim())
        .filter((flag) => flag !== '--help');
      expect(offered.length).toBeGreaterThan(5);
      const tables = documentedFlags(readFileSync(join(apps, app, 'README.md'), 'utf8'));
      const named = (flag: string, list: string[]) =>
        list.some((entry) =>
          entry.endsWith('*') ? flag.startsWith(entry.slice(0, -1)) : entry === flag,
        );
      // The first table is the server's own; later ones may be of its companions (proxyctl).
      const own = tables[0] ?? [];
      expect(own.filter((entry) => !entry.endsWith('*') && !offered.includes(entry))).toEqual([]);
      expect(offered.filter((flag) => !named(flag, tables.flat()))).toEqual([]);
    });
  }
});
