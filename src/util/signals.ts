/**
 * Clean detach on SIGINT, SIGTERM and SIGHUP: run the cleanup, then exit with
 * 128 + the signal number as shells expect. (SIGKILL needs nothing: ctop pins
 * no BPF object, so the kernel drops programs, links and maps with the
 * process's file descriptors.)
 */
const SIGNALS: Record<string, number> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

export function onTermination(cleanup: () => void): () => void {
  const handlers = Object.entries(SIGNALS).map(([sig, num]) => {
    const h = (): void => {
      try {
        cleanup();
      } finally {
        process.exit(128 + num);
      }
    };
    process.once(sig as NodeJS.Signals, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.removeListener(sig as NodeJS.Signals, h);
  };
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
