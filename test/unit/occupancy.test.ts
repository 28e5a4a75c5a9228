/** Occupancy: a census reduced to ports and sources, carried forward by the function tiers' live counts, in the snapshot and on the screen. */
import { describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../src/model/snapshot.js';
import { reduceCensus, type OccupancyCensus, type OccupancyInput } from '../../src/model/occupancy.js';
import type { CensusCounts } from '../../src/model/censusCounts.js';
import { selectRows } from '../../src/tui/talkers.js';
import { EMPTY_FILTER } from '../../src/tui/filter.js';
import { bucketLines, talkersLines, talkersTitle } from '../../src/tui/panels.js';
import { initialState } from '../../src/tui/state.js';
import { portCount, sample } from '../support/sample.js';

const NS = 4026532100;

function counts(over: Partial<CensusCounts> = {}): CensusCounts {
  return {
    entries: 0, assured: 0, unreplied: 0, parseErrors: 0, groupOverflow: 0, groups: [], srcs: [], dsts: [],
    distinctSrcs: 0, distinctDsts: 0, srcOverflow: 0, dstOverflow: 0, tcpRemaining: [], ...over,
  };
}

/** 3,000 TCP entries on port 5201 (ESTABLISHED 2,990, TIME_WAIT 10) and 400 UDP entries on 9999. */
function census(over: Partial<OccupancyCensus> = {}): OccupancyCensus {
  const c = counts({
    entries: 3400,
    groups: [
      { family: 2, l4proto: 6, port: 5201, state: 3, entries: 2990, assured: 2990, unreplied: 0 },
      { family: 2, l4proto: 6, port: 5201, state: 7, entries: 10, assured: 10, unreplied: 0 },
      { family: 2, l4proto: 17, port: 9999, state: null, entries: 400, assured: 0, unreplied: 400 },
    ],
    srcs: [{ family: 2, addr: '198.18.0.1', entries: 3000 }, { family: 2, addr: '198.18.0.9', entries: 400 }],
  });
  return {
    method: 'bpf-hash-walk',
    takenAt: '2026-11-25T10:00:01.000Z',
    namespaces: [{ inode: NS, ...reduceCensus(c) }],
    walk: {
      buckets: 1024, histogram: [400, 300, 200, 100, 20, 3, 0, 0, 0, 0, 1], histogramLastIsOrMore: false, nodes: 6800, longestChain: 10,
      rewalkedBuckets: 0, inconsistentBuckets: 0, locatedBy: 'live-entry', runs: 1, bucketsPerRun: 1024, maxRunMs: 1, walkMs: 2,
    },
    buckets: 1024,
    hashEntries: 3400,
    cpuMs: 12,
    wallMs: 15,
    ...over,
  };
}

const a = sample({ monoMs: 0, wallTime: '2026-11-25T10:00:00.000Z', namespaces: [{ inode: NS, name: 'lab', count: 3400, stats: sample().namespaces[0]!.stats, links: 2 }] });
const b = sample({
  monoMs: 5000,
  wallTime: '2026-11-25T10:00:05.000Z',
  namespaces: a.namespaces,
  ports: [portCount({ netns: NS, family: 'ipv4', proto: 17, port: 9999, inserts: 500, drops: 0 })],
  totals: { ...a.totals, inserts: 500 },
});

describe('occupancy', () => {
  it('a census per port sums the TCP states; sources keep the largest', () => {
    const r = reduceCensus(counts({ entries: 3, groups: [
      { family: 10, l4proto: 6, port: 443, state: 3, entries: 2, assured: 2, unreplied: 0 },
      { family: 10, l4proto: 6, port: 443, state: 7, entries: 1, assured: 1, unreplied: 0 },
    ] }));
    expect(r.ports).toEqual([{ family: 'ipv6', proto: 6, port: 443, entries: 3 }]);
  });

  it('a port that holds entries gets a row with no new flows; the section says how and how old', () => {
    const s = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 10 }, { census: census() });
    expect(s.ports.map((p) => [p.port, p.inserts, p.occupancy])).toEqual([[9999, 500, 400], [5201, 0, 3000]]);
    expect(s.occupancy).toMatchObject({ method: 'bpf-hash-walk', live: false, ageMs: 4000, entries: 3400, portsOmitted: 0 });
    expect(s.occupancy!.ports[0]).toMatchObject({ proto: 'tcp', port: 5201, entries: 3000 });
    expect(s.occupancy!.sources[0]).toMatchObject({ netns: NS, addr: '198.18.0.1', entries: 3000 });
    // top cuts the list and says what it left out
    const one = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 1 }, { census: census() });
    expect(one.occupancy).toMatchObject({ portsOmitted: 1, omittedEntries: 400 });
  });

  it('function tiers: the kernel’s per-port live count carries the census forward', () => {
    // at the census, the kernel's count for 5201 was 100 (entries made since load); now 40: 60 left
    const at = new Map([[`${NS}/ipv4/6/5201`, 100]]);
    const bf = { ...b, probe: { tier: 'fentry' as const, programs: [], refused: [] }, events: [
      { netns: NS, family: 'ipv4' as const, proto: 6, port: 5201, entries: 40, deletes: 60, earlyDrops: 0, insertFailed: 0, clashes: 0 },
      { netns: NS, family: 'ipv4' as const, proto: 17, port: 53, entries: 7, deletes: 0, earlyDrops: 0, insertFailed: 0, clashes: 0 },
    ] };
    const input: OccupancyInput = { census: census(), entriesAtCensus: at };
    const s = buildSnapshot(a, bf, { host: 'h', kernel: 'k', top: 0 }, input);
    const occ = new Map(s.ports.map((p) => [p.port, p.occupancy]));
    expect(occ.get(5201)).toBe(2940);
    expect(occ.get(53)).toBe(7); // made after the census
    expect(occ.get(9999)).toBe(400);
    expect(s.occupancy).toMatchObject({ live: true, entries: 3347 });
    expect(s.occupancy!.namespaces).toEqual([{ inode: NS, entries: 3347 }]);
  });

  it('the ports view ranks by occupancy and shows entries held with the census age', () => {
    const s = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 0, unsorted: true }, { census: census() });
    const sel = selectRows(s, 'ports', 'occupancy', EMPTY_FILTER, 10);
    expect(sel.rows.map((r) => [r.label, r.entries])).toEqual([['tcp 5201', 3000], ['udp 9999', 400]]);
    const st = { ...initialState(), sort: { ...initialState().sort, ports: 'occupancy' as const } };
    const lines = talkersLines(sel, st, 78, 5, { color: false });
    expect(lines[1]).toMatch(/tcp 5201 .* 3,000 \{\/inverse\}$/);
    expect(talkersTitle(st, sel, s)).toContain('by occupancy  occ census 4s ago');
    // sources held are listed though no tuple moved
    const src = selectRows(s, 'sources', 'occupancy', EMPTY_FILTER, 10);
    expect(src.rows[0]).toMatchObject({ label: '198.18.0.1', entries: 3000 });
  });

  it('the hash panel says measured with its age, longest chain against the limit; model without a walk', () => {
    const s = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 0 }, { census: census() });
    const lines = bucketLines(s, 38, 4);
    expect(lines[0]!.trimEnd()).toBe('measured 4s ago  longest 10/50');
    expect(lines[3]).toContain('restart 0/s');
    const tall = bucketLines(s, 38, 13);
    // 0..7 and 8+: the chain of 10 folds into 8+
    expect(tall.slice(1, 10).map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '))).toEqual(['0 400', '1 300', '2 200', '3 100', '4 20', '5 3', '6 0', '7 0', '8+ 1']);
    expect(tall[10]).toContain('longest chain 10, kernel limit 50-79');
    const m = buildSnapshot(a, b, { host: 'h', kernel: 'k', top: 0 }, { census: census({ walk: null, method: 'ctnetlink-dump', walkFallbackReason: 'refused' }) });
    expect(bucketLines(m, 38, 4)[0]).toMatch(/^model \(uniform hash/);
    expect(m.hashBuckets).toMatchObject({ method: 'model', fallbackReason: 'refused' });
  });
});

describe('the census budget', () => {
  it('the next census waits until the thread’s CPU time, with the next census’s expected cost, is within the budget, between the minimum and maximum interval', async () => {
    const { nextCensusAt } = await import('../../src/model/occupancy.js');
    const o = { budgetShare: 0.02, minIntervalMs: 1000, maxIntervalMs: 300_000 };
    // 80 ms of CPU since the thread began and 40 ms expected for the next census: at 2 %, the next at 6 s
    expect(nextCensusAt({ ...o, startedMs: 3000, spentCpuMs: 80, nextCpuMs: 40 })).toBe(6000);
    // a cheap census still waits the minimum interval
    expect(nextCensusAt({ ...o, startedMs: 3000, spentCpuMs: 10, nextCpuMs: 5 })).toBe(4000);
    expect(nextCensusAt({ ...o, startedMs: 10_000, spentCpuMs: 10, nextCpuMs: 5 })).toBe(11_000);
    // a million entries: 300 ms of start-up, the first census 600 ms, each 600 ms: the second starts
    // at 75 s, when 1.5 s of CPU is 2 % of the time since start
    expect(nextCensusAt({ ...o, startedMs: 0, spentCpuMs: 900, nextCpuMs: 600 })).toBe(75_000);
    // never later than the maximum
    expect(nextCensusAt({ ...o, startedMs: 0, spentCpuMs: 60_000, nextCpuMs: 600 })).toBe(300_000);
  });

  it('from the second census on, the CPU share since the thread started never exceeds the budget, not even during a census', async () => {
    const { nextCensusAt } = await import('../../src/model/occupancy.js');
    const o = { budgetShare: 0.02, minIntervalMs: 1000, maxIntervalMs: 300_000 };
    // a simulated thread: 250 ms of start-up, then censuses of 80 ms of CPU over 100 ms of wall time
    const startupMs = 250;
    const cpuMs = 80;
    const wallMs = 100;
    let t = startupMs;
    let spent = startupMs;
    let worstAfterSecond = 0;
    for (let k = 0; k < 50; k++) {
      const began = t;
      // during the census, the share since start is highest at its end
      t += wallMs;
      spent += cpuMs;
      if (k >= 1) worstAfterSecond = Math.max(worstAfterSecond, spent / t);
      t = Math.max(t, nextCensusAt({ ...o, startedMs: began, spentCpuMs: spent, nextCpuMs: cpuMs }));
      if (k >= 1) worstAfterSecond = Math.max(worstAfterSecond, spent / t);
    }
    expect(worstAfterSecond).toBeLessThanOrEqual(0.02);
    // the old rule (the next census once the CPU spent so far is within the budget) overshoots at every census
    let t2 = startupMs;
    let spent2 = startupMs;
    let worstOld = 0;
    for (let k = 0; k < 50; k++) {
      t2 += wallMs;
      spent2 += cpuMs;
      if (k >= 1) worstOld = Math.max(worstOld, spent2 / t2);
      t2 = Math.max(t2, spent2 / o.budgetShare);
    }
    expect(worstOld).toBeGreaterThan(0.02);
  });

  it('a failed census says so in the table’s title', () => {
    const st = initialState();
    expect(talkersTitle(st, undefined, undefined, 'cannot open a ctnetlink socket in web: EPERM')).toContain('occ: census failed: cannot open a ctnetlink socket in web: EPERM');
  });
});
