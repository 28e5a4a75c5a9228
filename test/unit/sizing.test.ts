import { describe, expect, it } from 'vitest';
import { kernelDefaultMax, sizing } from '../../src/model/sizing.js';
import { projectTimeToFull } from '../../src/model/projection.js';

const GiB = 1024 ** 3;

describe('the kernel default formula: RAM / 16384 / (word size / 32)', () => {
  it('gives 2,097,152 for 64 GiB on 64-bit', () => {
    expect(kernelDefaultMax(64 * GiB, 64)).toBe(2_097_152);
  });
  it('doubles on 32-bit (half the list-head size) and scales with RAM', () => {
    expect(kernelDefaultMax(64 * GiB, 32)).toBe(4_194_304);
    expect(kernelDefaultMax(1 * GiB)).toBe(32_768);
    expect(kernelDefaultMax(16 * GiB)).toBe(524_288);
  });
  it('rounds down and refuses nonsense', () => {
    expect(kernelDefaultMax(16384 * 2 + 1, 64)).toBe(1);
    expect(kernelDefaultMax(0)).toBe(0);
    expect(kernelDefaultMax(-5)).toBe(0);
    expect(kernelDefaultMax(Number.NaN)).toBe(0);
  });
});

describe('sizing table', () => {
  it('sets the peak against the recorded limit and the formula for each RAM size', () => {
    const z = sizing({ max: 262_144, buckets: 262_144, count: 1000, peakCount: 131_072, memTotalBytes: 16 * GiB, wordBits: 64 });
    expect(z).toMatchObject({ fillRatio: 1000 / 262_144, peakFillRatio: 0.5, peakEntriesPerBucket: 0.5, hostDefaultMax: 524_288 });
    expect(z.rows.map((r) => [r.label, r.defaultMax])).toEqual([
      ['recording host (16 GiB)', 524_288],
      ['1 GiB', 32_768],
      ['4 GiB', 131_072],
      ['16 GiB', 524_288],
      ['64 GiB', 2_097_152],
      ['256 GiB', 8_388_608],
    ]);
    expect(z.rows[2]!.peakFillOfDefault).toBe(1);
  });
  it('without the host RAM, only the reference rows; zero limits do not divide by zero', () => {
    const z = sizing({ max: 0, buckets: 0, count: 5, peakCount: 5 });
    expect(z.rows).toHaveLength(5);
    expect(z.hostDefaultMax).toBeUndefined();
    expect([z.fillRatio, z.peakFillRatio, z.peakEntriesPerBucket]).toEqual([0, 0, 0]);
  });
});

describe('time-to-full projection', () => {
  it('extends a steady climb to max', () => {
    // 100 entries/s from 0, max 1000: at t=5 s the line is at 500, full 5 s later
    const p = projectTimeToFull([1000, 2000, 3000, 4000, 5000], [100, 200, 300, 400, 500], 1000);
    expect(p.slopePerSec).toBeCloseTo(100, 9);
    expect(p.secondsToFull).toBeCloseTo(5, 9);
    expect(p.full).toBe(false);
  });
  it('says "not growing" for a flat or falling table, "now" for a full one', () => {
    expect(projectTimeToFull([0, 1000], [5, 5], 10).secondsToFull).toBeNull();
    expect(projectTimeToFull([0, 1000], [9, 5], 10).secondsToFull).toBeNull();
    expect(projectTimeToFull([0, 1000], [5, 10], 10)).toMatchObject({ full: true, secondsToFull: 0 });
    expect(projectTimeToFull([0], [5], 10).secondsToFull).toBeNull();
    expect(projectTimeToFull([], [], 10).points).toBe(0);
  });
});
