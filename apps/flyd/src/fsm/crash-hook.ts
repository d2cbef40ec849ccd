/**
 * A test-only fault injector: with `FLYD_CRASH_AFTER_STEP=<action>:<step>` in its environment,
 * flyd kills itself with SIGKILL right after committing that step of a run of that action, so a
 * test can crash it at an exact step boundary; with `FLYD_CRASH_BEFORE_COMMIT=<action>:<step>`,
 * right after the step ran but before its result is committed (the step then runs again after
 * the restart: what proves it idempotent). Unset (always, outside tests), it does nothing.
 */
export function crashHook(
  setting = process.env.FLYD_CRASH_AFTER_STEP,
): (action: string, step: string) => void {
  if (!setting) return () => undefined;
  return (action, step) => {
    if (`${action}:${step}` === setting) process.kill(process.pid, 'SIGKILL');
  };
}
