import assert from 'node:assert/strict';

/**
 * The line of a key in a TOML file, for messages (smol-toml's parse result has no positions).
 * Tracks the table each line is in — `[a.b]` and array tables `[[a]]`, counted per parent — and
 * finds `key =` inside the right one; a key that is not there (a required one) is reported at its
 * table's header. Dotted and inline keys are found by their first part.
 */
export function lineOf(source: string, path: (string | number)[]): number | undefined {
  const lines = source.split('\n');
  const tableOf = (header: string) =>
    header.split('.').map((part) => part.trim().replace(/^"|"$/g, ''));
  let current: (string | number)[] = [];
  const counts = new Map<string, number>();
  const starts: { path: (string | number)[]; line: number }[] = [{ path: [], line: 0 }];
  const keyLines: { table: (string | number)[]; key: string; line: number }[] = [];
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    const array = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(line);
    const table = array ? undefined : /^\[\s*([^\]]+?)\s*\]/.exec(line);
    if (array) {
      const parts = tableOf(captured(array, 1));
      const name = parts.pop() ?? ''; // split() gives at least one part
      // An array table's index counts within the current element of its parent.
      const parent = resolveParent(current, parts);
      const id = JSON.stringify([...parent, name]);
      const position = counts.get(id) ?? 0;
      counts.set(id, position + 1);
      current = [...parent, name, position];
      starts.push({ path: current, line: index + 1 });
    } else if (table) {
      current = resolveParent(current, tableOf(captured(table, 1)));
      starts.push({ path: current, line: index + 1 });
    } else {
      const key = /^("?)([A-Za-z0-9_-]+)\1\s*(\.|=)/.exec(line);
      if (key) keyLines.push({ table: current, key: captured(key, 2), line: index + 1 });
    }
  }
  const same = (a: (string | number)[], b: (string | number)[]) =>
    a.length === b.length && a.every((part, index) => part === b[index]);
  // The longest prefix of `path` that is a table, then the key after it.
  for (let cut = path.length - 1; cut >= 0; cut--) {
    const table = path.slice(0, cut);
    const key = path[cut];
    const found = keyLines.find((entry) => same(entry.table, table) && entry.key === key);
    if (found) return found.line;
    const header = starts.find((start) => same(start.path, path.slice(0, cut + 1)));
    if (header && cut === path.length - 1) return header.line || undefined;
  }
  const header = [...starts]
    .reverse()
    .find((start) => same(start.path, path.slice(0, start.path.length)));
  return header?.line || undefined;
}

/**
 * A table header's path with the indices of the array tables it lies in: `[services.concurrency]`
 * inside the second `[[services]]` is `services, 1, concurrency`.
 */
function resolveParent(current: (string | number)[], parts: string[]): (string | number)[] {
  const out: (string | number)[] = [];
  let at = 0;
  for (const part of parts) {
    out.push(part);
    while (at < current.length && current[at] !== part) at++;
    if (at < current.length) {
      at++;
      const index = current[at];
      if (typeof index === 'number') out.push(index);
    }
  }
  return out;
}

/** Group `index` of `match`, which its pattern always fills. */
function captured(match: RegExpExecArray, index: number): string {
  const text = match[index];
  assert.ok(text !== undefined, `group ${index} of "${match[0]}" is missing`);
  return text;
}
