import { describe, expect, it } from 'vitest';
import { describePlan, fullDemoProblem, planDemo, UDP_UNREPLIED_TIMEOUT_S } from '../../src/demo/plan.js';

describe('planDemo', () => {
  it('full: fills to the limit, mostly with assured streams, leaving 5 % to the cache', () => {
    const p = planDemo({ size: 'full', max: 262_144, entryBytes: 256 });
    expect(p).toMatchObject({ entries: 262_144, memoryBytes: 64 * 1024 * 1024, heldTcp: 500, expectDrops: true, entryBytesKnown: true });
    expect(p.streamFlows + p.heldTcp + Math.ceil(262_144 * 0.05)).toBe(262_144);
    expect(p.cacheFlowsPerSec).toBe(Math.ceil(262_144 * 0.05));
    expect(describePlan(p)).toBe(
      'fills its table to nf_conntrack_max = 262,144 entries (64 MiB of kernel memory, about 5 s), then conntrack drops packets; ' +
        'all of it is freed at exit. --small: 32,768 entries, no drops',
    );
  });

  it('small: an eighth of the limit at most, and the cache never pushes it over', () => {
    for (const max of [1024, 65_536, 262_144, 4_194_304]) {
      const p = planDemo({ size: 'small', max, entryBytes: 0 });
      expect(p.entries).toBeLessThanOrEqual(Math.min(32_768, max / 8));
      // cache entries live UDP_UNREPLIED_TIMEOUT_S: the most the namespace can hold
      expect(p.streamFlows + p.heldTcp + p.cacheFlowsPerSec * UDP_UNREPLIED_TIMEOUT_S).toBeLessThanOrEqual(p.entries);
      expect(p.expectDrops).toBe(false);
      expect(p.entryBytesKnown).toBe(false);
      expect(p.memoryBytes).toBe(p.entries * 320);
    }
    expect(describePlan(planDemo({ size: 'small', max: 262_144, entryBytes: 256 }))).toBe(
      'holds at most 32,768 entries (8.0 MiB), an eighth of nf_conntrack_max = 262,144 at most: the table never fills, so no drops',
    );
  });

  it('refuses the full fill where it is too big or memory too short, and points to --small', () => {
    const big = planDemo({ size: 'full', max: 4_194_304, entryBytes: 256 });
    expect(fullDemoProblem(big, 64 << 30)).toMatch(/^nf_conntrack_max is 4,194,304: filling that many entries takes about \d+ s and 1024 MiB$/);
    const p = planDemo({ size: 'full', max: 262_144, entryBytes: 256 });
    expect(fullDemoProblem(p, 200 << 20)).toBe('filling the table takes 64 MiB of kernel memory and only 200 MiB is available');
    expect(fullDemoProblem(p, 256 << 20)).toBeUndefined();
    expect(fullDemoProblem(planDemo({ size: 'small', max: 4_194_304, entryBytes: 256 }), 1)).toBeUndefined();
  });
});
