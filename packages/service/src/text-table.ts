/**
 * Rows of cells as lines for a terminal: each column as wide as its widest cell, two spaces
 * between columns, the last column unpadded. For operator tools (proxyctl, fleet-wan) whose
 * tables hold ids of any length.
 */
export function alignedRows(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, at) => {
      widths[at] = Math.max(widths[at] ?? 0, cell.length);
    });
  return rows.map((row) =>
    row.map((cell, at) => (at === row.length - 1 ? cell : cell.padEnd(widths[at] ?? 0))).join('  '),
  );
}
