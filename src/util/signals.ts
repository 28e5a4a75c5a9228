/**
 * Clean detach on any exit: SIGINT, SIGTERM, SIGHUP and an uncaught
 * exception run every registered cleanup, then exit (128 + the signal number,
 * as shells expect; 1 for a crash). SIGKILL needs nothing: ctop pins no BPF
 * object, so the kernel drops programs, links and maps with the process's
 * file descriptors.
 */
const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

const cleanups = new Set<() => void>();

/** Runs every registered cleanup once; never throws. */
export function runCleanups(): void {
  for (const c of [...cleanups]) {
    cleanups.delete(c);
    try {
      c();
    } catch {
      // keep going: the others must still run
    }
  }
}

/**
 * Registers `cleanup` for the given signals (default: all three) and for a
 * crash. Returns a function that unregisters it.
 */
export function onTermination(cleanup: () => void, signals: string[] = Object.keys(SIGNALS)): () => void {
  cleanups.add(cleanup);
  const handlers = Object.entries(SIGNALS)
    .filter(([sig]) => signals.includes(sig))
    .map(([sig, num]) => {
      const h = (): void => {
        runCleanups();
        process.exit(128 + num);
      };
      process.once(sig as NodeJS.Signals, h);
      return [sig, h] as const;
    });
  return () => {
    cleanups.delete(cleanup);
    for (const [sig, h] of handlers) process.removeListener(sig as NodeJS.Signals, h);
  };
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A promise that resolves on the first SIGINT (Ctrl-C), for commands where
 * Ctrl-C means "stop now and show what you have". Removes its handler when
 * disposed; SIGTERM and SIGHUP keep their meaning (detach and exit).
 */
export function interruptible(): { interrupted: Promise<void>; dispose(): void } {
  let handler: () => void = () => {};
  const interrupted = new Promise<void>((resolve) => {
    handler = (): void => resolve();
  });
  process.prependOnceListener('SIGINT', handler);
  return { interrupted, dispose: () => process.removeListener('SIGINT', handler) };
}

/**
 * Test-only fault injection, so the reliability suite can prove that a crash
 * detaches cleanly: CTOP_TEST_FAULT=uncaught throws from a timer (outside any
 * promise chain) once the probe is attached. Unset in normal use.
 */
export function maybeInjectFault(): void {
  if (process.env.CTOP_TEST_FAULT === 'uncaught') {
    setTimeout(() => {
      throw new Error('injected fault (CTOP_TEST_FAULT=uncaught)');
    }, 200);
  }
}
