/**
 * Errors the user can act on. The CLI's single error boundary prints
 * `ctop: <message>` and `hint: <hint>` and exits with `exitCode`; anything
 * else is a bug and prints its stack.
 */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  privileges: 3,
  kernel: 4,
  conntrackInactive: 5,
} as const;

export class CtopError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly exitCode: number = ExitCode.failure,
    /** Extra detail printed only with --verbose (libbpf's log, for example). */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'CtopError';
  }
}

/** What the native addon throws: see native/addon.cc NativeError(). */
export interface NativeErrorShape {
  code: 'ECTOP_NATIVE';
  errno: number;
  step: string;
  log: string;
  message: string;
}

export function isNativeError(e: unknown): e is NativeErrorShape {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ECTOP_NATIVE';
}

/** Any thrown value as one line of text; a native error names its step and errno. */
export function describeError(e: unknown): string {
  if (isNativeError(e)) return `${e.message} (step ${e.step}, errno ${e.errno})`;
  return e instanceof Error ? e.message : String(e);
}
