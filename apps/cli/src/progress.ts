import { createSpinner } from 'nanospinner';
import pc from 'picocolors';

/** Where progress goes: stderr (stdout is for data); a stream of the caller's in tests. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

/**
 * Runs `work` for one machine under a line that says how it goes. On a terminal: a spinner whose
 * text follows each status `work` reports (`waiting for alive`), replaced when it ends by a green
 * ✔ line (`done(result)`) or a red ✖ line with the error's first line. Elsewhere (a CI log, a
 * pipe): no frames and no colours, one plain line when it ends — frames would fill a log with
 * carriage returns. The error is rethrown either way.
 */
export async function machineLine<T>(
  text: string,
  work: (status: (line: string) => void) => Promise<T>,
  done: (result: T) => string,
  stream: ProgressStream = process.stderr,
): Promise<T> {
  const terminal = stream.isTTY === true;
  const colours = pc.createColors(terminal);
  const spinner = terminal
    ? createSpinner(text, { stream: stream as NodeJS.WriteStream }).start()
    : undefined;
  try {
    const result = await work((status) => spinner?.update({ text: `${text}: ${status}` }));
    if (spinner) spinner.success({ text: colours.green(done(result)) });
    else stream.write(`${done(result)}\n`);
    return result;
  } catch (error) {
    const reason = `${text}: ${String((error as Error).message ?? error).split('\n')[0]}`;
    if (spinner) spinner.error({ text: colours.red(reason) });
    else stream.write(`${reason}\n`);
    throw error;
  }
}
