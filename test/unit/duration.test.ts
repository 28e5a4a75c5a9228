import { describe, expect, it } from 'vitest';
import { formatMs, parseCount, parseDurationMs } from '../../src/util/duration.js';
import { CtopError, ExitCode } from '../../src/errors.js';

describe('parseDurationMs', () => {
  it('reads units and bare seconds', () => {
    expect(parseDurationMs('5s', '--duration')).toBe(5000);
    expect(parseDurationMs('500ms', '--duration')).toBe(500);
    expect(parseDurationMs('2m', '--duration')).toBe(120_000);
    expect(parseDurationMs('1h', '--duration')).toBe(3_600_000);
    expect(parseDurationMs('1.5s', '--duration')).toBe(1500);
    expect(parseDurationMs('3', '--duration')).toBe(3000);
  });

  it('rejects garbage with a usage error naming the flag', () => {
    for (const bad of ['', 'fast', '5x', '-1s', '5 s s', '1e3']) {
      let err: unknown;
      try {
        parseDurationMs(bad, '--duration');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CtopError);
      expect((err as CtopError).exitCode).toBe(ExitCode.usage);
      expect((err as CtopError).message).toMatch(/^--duration: /);
      expect((err as CtopError).hint).toMatch(/5s/);
    }
  });

  it('rejects out-of-range values', () => {
    expect(() => parseDurationMs('0s', '--duration', 100)).toThrow(/out of range/);
    expect(() => parseDurationMs('25h', '--duration')).toThrow(/out of range/);
  });

  it('formats back', () => {
    expect(formatMs(5000)).toBe('5s');
    expect(formatMs(120_000)).toBe('2m');
    expect(formatMs(1500)).toBe('1500ms');
  });
});

describe('parseCount', () => {
  it('accepts whole numbers in range only', () => {
    expect(parseCount('20', '--top', 0, 100)).toBe(20);
    expect(() => parseCount('2.5', '--top', 0, 100)).toThrow(/not a whole number/);
    expect(() => parseCount('101', '--top', 0, 100)).toThrow(/out of range/);
  });
});
