import { CtopError, ExitCode } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses "5s", "500ms", "2m", "1h" or a bare number of seconds into
 * milliseconds. `what` names the flag in the error.
 */
export function parseDurationMs(text: string, what: string, minMs = 1, maxMs = 24 * 3_600_000): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) {
    throw new CtopError(`${what}: '${text}' is not a duration`, 'write it as 500ms, 5s, 2m or 1h', ExitCode.usage);
  }
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000));
  if (ms < minMs || ms > maxMs) {
    throw new CtopError(
      `${what}: '${text}' is out of range`,
      `use a duration from ${formatMs(minMs)} to ${formatMs(maxMs)}`,
      ExitCode.usage,
    );
  }
  return ms;
}

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Parses a positive integer flag such as --top or --max-tuples. */
export function parseCount(text: string, what: string, min: number, max: number): number {
  if (!/^\s*\d+\s*$/.test(text)) {
    throw new CtopError(`${what}: '${text}' is not a whole number`, `use a number from ${min} to ${max}`, ExitCode.usage);
  }
  const n = Number(text);
  if (n < min || n > max) {
    throw new CtopError(`${what}: ${n} is out of range`, `use a number from ${min} to ${max}`, ExitCode.usage);
  }
  return n;
}
