/** Sizing advice against worked examples (kernel formulas in src/advise/sizing.ts). */
import { describe, expect, it } from 'vitest';
import { adviseSizing, kernelDefaults, parseKernelRelease, type SizingAdviceInput } from '../../src/advise/sizing.js';
import { REMAIN_SLOTS, remainSlot } from '../../src/model/remaining.js';

const GiB = 1024 ** 3;

function input(over: Partial<SizingAdviceInput> = {}): SizingAdviceInput {
  return {
    memBytes: 64 * GiB,
    wordBits: 64,
    kernelRelease: '6.18.44-fc',
    max: 262_144,
    buckets: 262_144,
    count: 1000,
    entryBytes: 256,
    timeoutsS: { established: 432_000, time_wait: 120, close_wait: 60, fin_wait: 120 },
    ...over,
  };
}

describe('kernel defaults', () => {
  it('5.15 and later: buckets = max, 262144 above 4 GiB on 64-bit, 65536 above 1 GiB, at least 1024', () => {
    const v = parseKernelRelease('6.18.44-fc-v782')!;
    expect(kernelDefaults(64 * GiB, 64, v)).toEqual({ buckets: 262_144, max: 262_144, rule: '5.15+' });
    expect(kernelDefaults(2 * GiB, 64, v)).toEqual({ buckets: 65_536, max: 65_536, rule: '5.15+' });
    // 512 MiB: 512 MiB / 16384 / 8 = 4096
    expect(kernelDefaults(0.5 * GiB, 64, v)).toEqual({ buckets: 4096, max: 4096, rule: '5.15+' });
    expect(kernelDefaults(16 * 1024 * 1024, 64, v).buckets).toBe(1024);
    expect(kernelDefaults(64 * GiB, 32, v).buckets).toBe(65_536);
  });
  it('before 5.15: max = 4 x buckets, 65536 buckets above 4 GiB, 16384 above 1 GiB', () => {
    expect(kernelDefaults(64 * GiB, 64, { major: 5, minor: 14 })).toEqual({ buckets: 65_536, max: 262_144, rule: 'before 5.15' });
    expect(kernelDefaults(2 * GiB, 64, { major: 4, minor: 19 })).toEqual({ buckets: 16_384, max: 65_536, rule: 'before 5.15' });
    expect(kernelDefaults(0.5 * GiB, 64, { major: 5, minor: 10 })).toEqual({ buckets: 4096, max: 16_384, rule: 'before 5.15' });
  });
});

describe('adviseSizing', () => {
  it('64 GiB, 64-bit: theoretical maximum 2,097,152; a quiet table keeps its limit', () => {
    const a = adviseSizing(input());
    expect(a.theoreticalMax).toBe(2_097_152);
    expect(a.kernelDefaults).toEqual({ buckets: 262_144, max: 262_144, rule: '5.15+' });
    expect(a.recommended).toMatchObject({ max: 262_144, buckets: 262_144, bucketRange: [32_768, 131_072] });
    // 262144 x 256 B + 262144 x 8 B
    expect(a.memory).toEqual({ entryBytes: 256, bucketBytes: 8, currentBytes: 69_206_016, recommendedBytes: 69_206_016 });
  });
  it('a busy table: twice the count rounded to a power of two, buckets brought into max/8..max/2', () => {
    const a = adviseSizing(input({ count: 200_000, buckets: 16_384 }));
    expect(a.recommended.max).toBe(524_288);
    expect(a.recommended.bucketRange).toEqual([65_536, 262_144]);
    expect(a.recommended.buckets).toBe(65_536);
    expect(a.sysctlLines.slice(0, 2)).toEqual(['net.netfilter.nf_conntrack_max = 524288', 'net.netfilter.nf_conntrack_buckets = 65536']);
    expect(a.hashsize.sysfs).toBe('echo 65536 > /sys/module/nf_conntrack/parameters/hashsize');
    expect(a.sysctlDFile).toMatch(/^# \/etc\/sysctl.d\/90-conntrack.conf.*\nnet.netfilter.nf_conntrack_max = 524288\n/);
  });
  it('caps at the RAM formula: 1 GiB, 64-bit allows 32768', () => {
    const a = adviseSizing(input({ memBytes: GiB, max: 30_000, buckets: 16_384, count: 20_000 }));
    expect(a.theoreticalMax).toBe(32_768);
    expect(a.recommended.max).toBe(32_768);
    expect(a.recommended.reason).toMatch(/capped at the RAM formula's 32768/);
  });
  it('timeouts: suggested values, and the entries each would free from a census of remaining timeouts', () => {
    const entryRemainingSByState = {
      // established, 432000 s timeout: 431000 left = refreshed 1000 s ago (kept); 300000 left = 132000 s ago (freed at 86400)
      established: [431_000, 300_000],
      // time_wait, 120 s: 100 left = 20 s old (kept at 30), 50 left = 70 s old (freed)
      time_wait: [100, 50],
    };
    const a = adviseSizing(input({ entryRemainingSByState }));
    expect(a.timeouts.map((t) => [t.state, t.currentS, t.suggestedS, t.entries, t.wouldFree])).toEqual([
      ['established', 432_000, 86_400, 2, 1],
      ['time_wait', 120, 30, 2, 1],
      ['close_wait', 60, 30, 0, 0],
      ['fin_wait', 120, 30, 0, 0],
    ]);
    expect(a.sysctlLines).toContain('net.netfilter.nf_conntrack_tcp_timeout_time_wait = 30');
    // without a census the figure is unknown, not zero
    expect(adviseSizing(input()).timeouts[0]!.wouldFree).toBeNull();
    // a timeout already shorter than the suggestion stays
    expect(adviseSizing(input({ timeoutsS: { time_wait: 10 } })).timeouts).toEqual([
      { state: 'time_wait', sysctl: 'net.netfilter.nf_conntrack_tcp_timeout_time_wait', currentS: 10, suggestedS: 10, wouldFree: null, entries: null },
    ]);
  });
  it('a census that counts states but not timeouts: entries per state, wouldFree null with the reason', () => {
    const a = adviseSizing(input({ entriesByState: { established: 7, time_wait: 3 }, remainingUnavailable: 'no timeouts read' }));
    expect(a.timeouts.map((t) => [t.state, t.entries, t.wouldFree, t.wouldFreeUnavailable])).toEqual([
      ['established', 7, null, 'no timeouts read'],
      ['time_wait', 3, null, 'no timeouts read'],
      ['close_wait', 0, null, 'no timeouts read'],
      ['fin_wait', 0, null, 'no timeouts read'],
    ]);
    // without any census nothing claims a reason
    expect(adviseSizing(input()).timeouts[0]!.wouldFreeUnavailable).toBeUndefined();
  });
  it('a histogram census (the native one): wouldFree as a range that holds the exact figure', () => {
    const hist = (rs: number[]): number[] => {
      const h = new Array<number>(REMAIN_SLOTS).fill(0);
      for (const r of rs) h[remainSlot(r)]! += 1;
      return h;
    };
    // established 432000 -> 86400: cut at 345600 s left; time_wait 120 -> 30: cut at 90 s left
    const established = [431_000, 300_000, 340_000, 350_000];
    const timeWait = [100, 50, 89];
    const a = adviseSizing(input({ remainingHistogramByState: { established: hist(established), time_wait: hist(timeWait) } }));
    const exact = adviseSizing(input({ entryRemainingSByState: { established, time_wait: timeWait } }));
    for (const [i, t] of a.timeouts.entries()) {
      const e = exact.timeouts[i]!;
      expect(t.entries, t.state).toBe(e.entries);
      expect(t.wouldFree!, t.state).toBeLessThanOrEqual(e.wouldFree!);
      expect(t.wouldFreeAtMost!, t.state).toBeGreaterThanOrEqual(e.wouldFree!);
    }
    // 300000 (slot 262144..327679) is surely freed; 340000 and 350000 are in 327680..393215, which straddles the cut
    expect(a.timeouts[0]).toMatchObject({ state: 'established', entries: 4, wouldFree: 1, wouldFreeAtMost: 3 });
    // 50 (48..55) surely; 89 is in 80..95, which straddles 90: possibly; 100 is above
    expect(a.timeouts[1]).toMatchObject({ state: 'time_wait', entries: 3, wouldFree: 1, wouldFreeAtMost: 2 });
    expect(a.timeouts[2]).toMatchObject({ state: 'close_wait', entries: 0, wouldFree: 0, wouldFreeAtMost: 0 });
    // the exact path gives no range
    expect(exact.timeouts[0]!.wouldFreeAtMost).toBeUndefined();
  });
});
