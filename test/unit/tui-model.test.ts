/** The pure models behind the live screen: bucket histogram, time to full (NOTRACK: tui-notrack.test.ts). */
import { describe, expect, it } from 'vitest';
import { bucketModel, bucketModelLabel } from '../../src/model/bucketModel.js';
import { formatTimeToFull, netGrowthPerSec, timeToFullSec } from '../../src/model/timeToFull.js';
import { fixtureWindow } from '../support/tuiFixtures.js';

describe('bucketModel (uniform hash, Poisson)', () => {
  it('λ = entries / buckets, and the histogram sums to the bucket count', () => {
    const m = bucketModel(16384, 16384);
    expect(m.lambda).toBe(1);
    expect(m.loadFactor).toBe(1);
    expect(m.histogram).toHaveLength(9);
    expect(m.histogram[0]!.buckets).toBeCloseTo(16384 * Math.exp(-1), 6);
    expect(m.histogram[2]!.buckets).toBeCloseTo((16384 * Math.exp(-1)) / 2, 6);
    expect(m.histogram.at(-1)).toMatchObject({ k: 8, orMore: true });
    expect(m.histogram.reduce((a, h) => a + h.buckets, 0)).toBeCloseTo(16384, 6);
    expect(bucketModelLabel(m)).toBe('model (uniform hash, Poisson λ=1.00)');
  });

  it('an empty table has every bucket empty; no buckets gives λ 0', () => {
    expect(bucketModel(0, 1024).histogram[0]!.buckets).toBe(1024);
    expect(bucketModel(100, 0).lambda).toBe(0);
  });

  it('large λ does not overflow and the tail holds most buckets', () => {
    const m = bucketModel(1_000_000, 1000);
    expect(Number.isFinite(m.histogram.at(-1)!.buckets)).toBe(true);
    expect(m.histogram.at(-1)!.buckets).toBeCloseTo(1000, 3);
  });
});

describe('time to full', () => {
  it('net growth comes from the fullest namespace’s count between windows', () => {
    const a = fixtureWindow(0);
    const b = fixtureWindow(1); // the lab namespace grows by 3000 in 1 s
    expect(netGrowthPerSec(undefined, b)).toBeNull();
    expect(netGrowthPerSec(a, b)).toBe(3000);
  });

  it('seconds to full; never when not growing; 0 when full', () => {
    expect(timeToFullSec(40_000, 65_536, 3000)).toBeCloseTo(25_536 / 3000);
    expect(timeToFullSec(40_000, 65_536, 0)).toBeNull();
    expect(timeToFullSec(40_000, 65_536, -50)).toBeNull();
    expect(timeToFullSec(40_000, 65_536, null)).toBeNull();
    expect(timeToFullSec(65_536, 65_536, 10)).toBe(0);
  });

  it('formats', () => {
    expect(formatTimeToFull(null)).toBe('never');
    expect(formatTimeToFull(0)).toBe('full');
    expect(formatTimeToFull(8.2)).toBe('9s');
    expect(formatTimeToFull(750)).toBe('12m30s');
    expect(formatTimeToFull(3 * 3600 + 5 * 60)).toBe('3h05m');
    expect(formatTimeToFull(2 * 86400 + 4 * 3600)).toBe('2d04h');
    expect(formatTimeToFull(1e12)).toBe('>999d');
  });
});
