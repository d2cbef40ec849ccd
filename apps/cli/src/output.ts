import Table from 'cli-table3';
import pc from 'picocolors';

/** Writes a value as indented JSON (`--json`): what scripts read. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table for people: a header and rows, colours only on a terminal. */
export function printTable(head: string[], rows: (string | number)[][]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const table = new Table({
    head: head.map((title) => pc.bold(title)),
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rows) table.push(row.map(String));
  process.stdout.write(`${table.toString()}\n`);
}

/** `key: value` lines, keys aligned. */
export function printFields(fields: [string, string | number | undefined][]): void {
  const width = Math.max(...fields.map(([key]) => key.length));
  for (const [key, value] of fields)
    process.stdout.write(`${pc.bold(key.padEnd(width))}  ${value ?? '-'}\n`);
}

/** A line saying what happened, to stderr when stdout is for data. */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** A machine state, coloured by what it means. */
export function stateColour(state: string): string {
  if (state === 'started') return pc.green(state);
  if (state === 'stopped' || state === 'suspended' || state === 'created') return pc.yellow(state);
  if (state === 'failed' || state === 'destroyed') return pc.red(state);
  return state;
}
