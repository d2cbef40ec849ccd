/**
 * A test-only fault injector: with `FLYD_CRASH_AFTER_STEP=<action>:<step>` in its environment,
 * flyd kills itself with SIGKILL right after committing that step of a run of that action, so a
 * test can crash it at an exact step boundary. Unset (always, outside tests), it does nothing.
 */
export function crashHook(
  setting = process.env.FLYD_CRASH_AFTER_STEP,
): (action: string, step: string) => void {
  if (!setting) return () => undefined;
  return (action, step) => {
    if (`${action}:${step}` === setting) process.kill(process.pid, 'SIGKILL');
  };
}
