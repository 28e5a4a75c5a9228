import { describe, expect, it } from 'vitest';
import {
  CHAIN_LIMIT,
  buildCensus,
  byPort,
  chainPressure,
  parseSlabinfo,
  type CensusInput,
  type WalkResult,
} from '../../src/model/census.js';
import { tcpStateName } from '../../src/model/conntrack.js';
import { modelLongestChain } from '../../src/model/bucketModel.js';
import { formatCensus } from '../../src/format/censusText.js';
import { kallsymsAddress } from '../../src/source/hashWalk.js';
import { REMAIN_SLOTS, remainSlot } from '../../src/model/remaining.js';
import type { CensusCounts } from '../../src/model/censusCounts.js';

// the /proc/slabinfo format (version 2.1), lines as a 6.18 kernel prints them
const SLABINFO = `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
nf_conntrack_expect      0      0    208   19    1 : tunables    0    0    0 : slabdata      0      0      0
nf_conntrack       50016  50016    256   16    1 : tunables    0    0    0 : slabdata   3126   3126      0
`;

function nativeCensus(over: Partial<CensusCounts> = {}): CensusCounts {
  return {
    entries: 0, assured: 0, unreplied: 0, parseErrors: 0, groupOverflow: 0, groups: [], srcs: [], dsts: [],
    distinctSrcs: 0, distinctDsts: 0, srcOverflow: 0, dstOverflow: 0, ...over,
  };
}

function input(over: Partial<CensusInput> = {}): CensusInput {
  return {
    takenAt: '2026-12-01T00:00:00.000Z',
    occupancy: 'bpf-hash-walk',
    occupancyMs: 12,
    namespaces: [],
    buckets: 1024,
    hashEntries: 0,
    hashEntriesBefore: 0,
    entryBytes: 248,
    slab: null,
    walk: null,
    stats: { windowMs: 2000, before: { searchRestart: 10, chainTooLong: 1 }, after: { searchRestart: 30, chainTooLong: 5 } },
    ...over,
  };
}

/** P(X >= k) for Poisson(lambda), summed term by term: an independent check of the model. */
function poissonTail(lambda: number, k: number): number {
  let p = Math.exp(-lambda);
  let below = 0;
  for (let i = 0; i < k; i++) {
    below += p;
    p = (p * lambda) / (i + 1);
  }
  return 1 - below;
}

describe('slabinfo', () => {
  it('reads the conntrack cache, not the expectation cache that shares its prefix', () => {
    expect(parseSlabinfo(SLABINFO, 'nf_conntrack', 4096)).toEqual({
      name: 'nf_conntrack', activeObjs: 50016, numObjs: 50016, objSizeBytes: 256, bytes: 3126 * 1 * 4096,
    });
  });
  it('is null for a missing cache or a malformed line', () => {
    expect(parseSlabinfo(SLABINFO, 'nf_conntrack_nope', 4096)).toBeNull();
    expect(parseSlabinfo('nf_conntrack 1 2 x\n', 'nf_conntrack', 4096)).toBeNull();
  });
});

describe('kallsyms', () => {
  const text = 'ffffffff81000000 T _stext\nffffffff83a1b2c0 b nf_conntrack_hash\nffffffff8100abcd T nf_conntrack_hash_check_insert\n';
  it('finds a data symbol by exact name', () => {
    expect(kallsymsAddress(text, 'nf_conntrack_hash')).toBe(0xffffffff83a1b2c0n);
  });
  it('ignores text symbols, absent symbols and addresses hidden by kptr_restrict', () => {
    expect(kallsymsAddress(text, '_stext')).toBeUndefined();
    expect(kallsymsAddress('ffffffff8100abcd T nf_conntrack_in\n', 'nf_conntrack_hash')).toBeUndefined();
    expect(kallsymsAddress('0000000000000000 B nf_conntrack_hash\n', 'nf_conntrack_hash')).toBeUndefined();
  });
});

describe('chain pressure', () => {
  it('the model counts two nodes per entry and is labelled a model with its reason', () => {
    const p = chainPressure({ buckets: 262_144, hashEntries: 100_000, walk: null, walkFallbackReason: 'forced with --chains model' });
    expect(p).toMatchObject({ method: 'model', fallbackReason: 'forced with --chains model', nodes: 200_000, buckets: 262_144 });
    expect(p.loadFactor).toBeCloseTo(200_000 / 262_144, 12);
    expect(p.histogram.reduce((a, h) => a + h.buckets, 0)).toBeCloseTo(262_144, 6);
    expect(p.headroom).toBe(CHAIN_LIMIT.min - p.longestChain);
  });

  it('the model longest chain is the last length one bucket is expected to reach', () => {
    for (const [nodes, buckets] of [[200_000, 262_144], [2_000_000, 262_144], [10, 1_000_000], [5_000_000, 65_536]] as const) {
      const k = modelLongestChain(nodes, buckets);
      expect(buckets * poissonTail(nodes / buckets, k)).toBeGreaterThanOrEqual(1);
      expect(buckets * poissonTail(nodes / buckets, k + 1)).toBeLessThan(1);
    }
    expect(modelLongestChain(0, 1024)).toBe(0);
    expect(modelLongestChain(10, 0)).toBe(0);
  });

  it('a walk is reported as measured, with its histogram, runs and how the table was found', () => {
    const walk: WalkResult = {
      buckets: 8, histogram: [3, 2, 2, 1], histogramLastIsOrMore: false, nodes: 9, longestChain: 3,
      rewalkedBuckets: 1, inconsistentBuckets: 0, locatedBy: 'private-entry', runs: 1, bucketsPerRun: 8, maxRunMs: 0.5, walkMs: 0.5,
    };
    const p = chainPressure({ buckets: 8, hashEntries: 4, walk });
    expect(p).toMatchObject({ method: 'bpf-hash-walk', nodes: 9, longestChain: 3, headroom: 47, locatedBy: 'private-entry', rewalkedBuckets: 1 });
    expect(p.fallbackReason).toBeUndefined();
    expect(p.histogram).toEqual([
      { k: 0, orMore: false, buckets: 3 }, { k: 1, orMore: false, buckets: 2 }, { k: 2, orMore: false, buckets: 2 }, { k: 3, orMore: false, buckets: 1 },
    ]);
    expect(chainPressure({ buckets: 8, hashEntries: 4, walk: { ...walk, histogramLastIsOrMore: true } }).histogram.at(-1)!.orMore).toBe(true);
  });
});

describe('the census report', () => {
  const web = nativeCensus({
    entries: 7, assured: 3, unreplied: 2, parseErrors: 1, groupOverflow: 2,
    groups: [
      { family: 2, l4proto: 6, port: 443, state: 3, entries: 3, assured: 3, unreplied: 0 },
      { family: 2, l4proto: 6, port: 443, state: 7, entries: 1, assured: 0, unreplied: 0 },
      { family: 10, l4proto: 17, port: 53, state: null, entries: 2, assured: 0, unreplied: 2 },
      { family: 2, l4proto: 1, port: 0, state: null, entries: 1, assured: 0, unreplied: 0 },
    ],
    srcs: [{ family: 2, addr: '198.18.0.1', entries: 5 }],
    dsts: [{ family: 10, addr: '2001:2::2', entries: 2 }],
    distinctSrcs: 1, distinctDsts: 1, srcOverflow: 4, remainOverflow: 6,
    // 3 ESTABLISHED entries with 5 days left (slot 4*(18-1)+2), 1 TIME_WAIT entry with 100 s (slot 4*(6-1)+2)
    tcpRemaining: [
      { state: 3, slots: Object.assign(new Array<number>(REMAIN_SLOTS).fill(0), { [remainSlot(432_000)]: 3 }) },
      { state: 7, slots: Object.assign(new Array<number>(REMAIN_SLOTS).fill(0), { [remainSlot(100)]: 1 }) },
    ],
  });
  const r = buildCensus(input({
    namespaces: [{ inode: 4026532000, name: 'web', census: web }, { inode: 4026532001, name: 'db', census: nativeCensus({ entries: 5, assured: 5 }) }],
    hashEntries: 12, hashEntriesBefore: 11,
    slab: { name: 'nf_conntrack', activeObjs: 12, numObjs: 16, objSizeBytes: 256, bytes: 4096 },
  }));

  it('sums namespaces, names states and protocols, and adds what could not be counted', () => {
    expect(r).toMatchObject({ schema: 'ctop.census/v1', entries: 12, assured: 8, unreplied: 2, hashEntries: { before: 11, after: 12 } });
    const ns = r.namespaces[0]!;
    expect(ns.uncounted).toBe(3);
    expect(ns.sourceOverflow).toBe(4);
    expect(ns.groups.map((g) => [g.family, g.proto, g.port, g.state])).toEqual([
      ['ipv4', 'tcp', 443, 'ESTABLISHED'], ['ipv4', 'tcp', 443, 'TIME_WAIT'], ['ipv6', 'udp', 53, null], ['ipv4', 'icmp', 0, null],
    ]);
    expect(byPort(ns.groups)[0]).toEqual({ family: 'ipv4', proto: 'tcp', port: 443, entries: 4, assured: 3, unreplied: 0 });
    expect(ns.topSources).toEqual([{ family: 'ipv4', addr: '198.18.0.1', entries: 5 }]);
    expect(remainSlot(432_000)).toBe(70);
    expect(ns.tcpRemaining).toEqual([
      { state: 'ESTABLISHED', slots: [{ loS: 393_216, hiS: 458_751, entries: 3 }] },
      { state: 'TIME_WAIT', slots: [{ loS: 96, hiS: 111, entries: 1 }] },
    ]);
    // a census that did not read timeouts says so (null)
    expect(r.namespaces[1]!.tcpRemaining).toBeNull();
    // entries the bounded seconds-left table had no room for are counted, and said
    expect(ns.tcpRemainingOverflow).toBe(6);
    expect(r.namespaces[1]!.tcpRemainingOverflow).toBe(0);
    expect(formatCensus(r, 20)).toContain('6 TCP entries left out of the seconds-left histogram (its table was full)');
  });

  it('names the method of every section', () => {
    expect(r.methods).toEqual({ occupancy: 'bpf-hash-walk', entrySize: 'btf', slab: 'slabinfo', chains: 'model', rates: 'ctnetlink-stats' });
    expect(r.memory).toEqual({ entryBytes: 248, expectedBytes: 12 * 248, slab: { name: 'nf_conntrack', activeObjs: 12, numObjs: 16, objSizeBytes: 256, bytes: 4096 } });
    expect(r.rates).toEqual({ method: 'ctnetlink-stats', windowMs: 2000, searchRestart: 30, chainTooLong: 5, searchRestartPerSec: 10, chainTooLongPerSec: 2 });
    const fallback = buildCensus(input({ occupancy: 'ctnetlink-dump', occupancyFallbackReason: 'forced with --occupancy ctnetlink', entryBytes: null }));
    expect(fallback.methods).toMatchObject({ occupancy: 'ctnetlink-dump', occupancyFallbackReason: 'forced with --occupancy ctnetlink', entrySize: 'unavailable', slab: 'unavailable' });
    expect(fallback.memory.expectedBytes).toBeNull();
  });

  it('the text says MODEL for the model and measured for a walk, with the fallback reasons', () => {
    const text = formatCensus(buildCensus(input({ occupancy: 'ctnetlink-dump', occupancyFallbackReason: 'no BTF', walkFallbackReason: 'no BTF' })), 20);
    expect(text).toMatch(/occupancy \[ctnetlink dump \(libnetfilter_conntrack\), counted in C\] \(in-kernel count not used: no BTF\)/);
    expect(text).toMatch(/hash buckets \[MODEL: uniform hash, Poisson \(not measured\)\] \(walk not used: no BTF\)/);
    const walked = formatCensus(buildCensus(input({
      walk: { buckets: 4, histogram: [2, 2], histogramLastIsOrMore: false, nodes: 2, longestChain: 1, rewalkedBuckets: 0, inconsistentBuckets: 0, locatedBy: 'live-entry', runs: 1, bucketsPerRun: 4, maxRunMs: 1, walkMs: 1 },
    })), 20);
    expect(walked).toMatch(/hash buckets \[measured: every bucket walked in the kernel \(BPF\)\] \(table found from live-entry; 1 BPF runs of 4 buckets/);
    expect(walked).toMatch(/occupancy \[counted in the kernel during the BPF hash walk\]/);
    expect(walked).not.toMatch(/resized during the walk/);
    const restarted = buildCensus(input({
      walk: { buckets: 4, histogram: [2, 2], histogramLastIsOrMore: false, nodes: 2, longestChain: 1, rewalkedBuckets: 0, inconsistentBuckets: 0, resizeRestarts: 1, locatedBy: 'kallsyms', runs: 1, bucketsPerRun: 4, maxRunMs: 1, walkMs: 1 },
    }));
    expect(restarted.buckets.resizeRestarts).toBe(1);
    expect(formatCensus(restarted, 20)).toContain('the table was resized during the walk: walked again on the new one (4 buckets)');
  });

  it('TCP states read as conntrack -L prints them', () => {
    expect([0, 1, 2, 3, 7, 8, 9].map((s) => tcpStateName(s))).toEqual(['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2']);
    expect(tcpStateName(null)).toBeNull();
    expect(tcpStateName(42)).toBe('state 42');
  });
});

describe('work per BPF run', () => {
  it('covers as many buckets as hold about 4,096 nodes, within 64..16,384', async () => {
    const { bucketsPerRun } = await import('../../src/source/hashWalk.js');
    expect(bucketsPerRun(0, 262_144)).toBe(4096);
    expect(bucketsPerRun(2_000_000, 262_144)).toBe(Math.floor(4096 / (2_000_000 / 262_144)));
    expect(bucketsPerRun(100, 262_144)).toBe(4096);
    expect(bucketsPerRun(1e9, 1024)).toBe(64);
  });
});
