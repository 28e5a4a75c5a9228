/** The census reduced for advise/validate (src/model/portCensus.ts), from a hand-built native census. */
import { describe, expect, it } from 'vitest';
import { portCensus } from '../../src/model/portCensus.js';
import type { CensusCounts, CensusCountsGroup } from '../../src/model/censusCounts.js';
import { REMAIN_SLOTS } from '../../src/model/remaining.js';

function g(family: number, l4proto: number, port: number, state: number | null, entries: number): CensusCountsGroup {
  return { family, l4proto, port, state, entries, assured: 0, unreplied: 0 };
}

function census(groups: CensusCountsGroup[], tcpRemaining: CensusCounts['tcpRemaining'] = []): CensusCounts {
  return {
    entries: groups.reduce((a, x) => a + x.entries, 0), assured: 0, unreplied: 0, parseErrors: 0, groupOverflow: 0,
    groups, srcs: [], dsts: [], distinctSrcs: 0, distinctDsts: 0, srcOverflow: 0, dstOverflow: 0, tcpRemaining,
  };
}

describe('portCensus', () => {
  it('sums families and states per proto/port, counts lingering TCP states, leaves portless protocols to the total', () => {
    const c = census([
      g(2, 6, 80, 3, 5), // ESTABLISHED
      g(10, 6, 80, 7, 2), // TIME_WAIT, IPv6
      g(2, 6, 80, 1, 4), // SYN_SENT: not lingering
      g(2, 6, 443, 5, 1), // CLOSE_WAIT
      g(2, 17, 5000, null, 6),
      g(10, 17, 5000, null, 1),
      g(2, 1, 8, null, 3), // icmp echo: the port field is a type
    ]);
    const p = portCensus(c, 'bpf-hash-walk');
    expect(p.total).toBe(22);
    expect(p.byPort).toEqual({ 'tcp/80': 11, 'tcp/443': 1, 'udp/5000': 7 });
    expect(p.entriesByState).toEqual({ established: 5, time_wait: 2, close_wait: 1, fin_wait: 0 });
    expect(p.occupancy).toBe('bpf-hash-walk');
    expect(p.source).toMatch(/^bpf-hash-walk/);
    expect(portCensus(c, 'ctnetlink-dump').source).toMatch(/^ctnetlink-dump/);
  });
  it('seconds-left histograms by lingering state; null when the census could not read timeouts', () => {
    const slots = (k: number, n: number): number[] => Object.assign(new Array<number>(REMAIN_SLOTS).fill(0), { [k]: n });
    const p = portCensus(census([g(2, 6, 80, 3, 2)], [{ state: 3, slots: slots(5, 2) }, { state: 7, slots: slots(9, 1) }, { state: 1, slots: slots(2, 4) }]), 'ctnetlink-dump');
    expect(p.remainingHistogramByState!.established).toEqual(slots(5, 2));
    expect(p.remainingHistogramByState!.time_wait).toEqual(slots(9, 1));
    expect(p.remainingHistogramByState!.fin_wait).toEqual(slots(0, 0));
    expect(portCensus(census([], null), 'bpf-hash-walk').remainingHistogramByState).toBeNull();
  });
});
