/**
 * The census report (`ctop census --json`, schema ctop.census/v1, also the
 * `census` section of `ctop snapshot --census --json`): what the conntrack
 * table holds and how hard its hash works. Pure: built from what the source
 * read, no I/O. Every section names the method that produced its figures, so
 * nobody mistakes the model for a measurement.
 */
import type { NetnsOwner } from './owner.js';
import type { CensusCounts, CensusCountsAddr } from './censusCounts.js';
import { bucketModel, modelLongestChain } from './bucketModel.js';
import { family, protoName, tcpStateName } from './conntrack.js';
import { slotRange } from './remaining.js';

const CENSUS_SCHEMA = 'ctop.census/v1';

/** Linux >= 6.3 (nf_conntrack_core.c): an insert is refused (chaintoolong)
 * when its chain is longer than MIN_CHAINLEN + a random value below
 * MAX_CHAINLEN = 80 - MIN_CHAINLEN, chosen per insert; so 50..79. */
export const CHAIN_LIMIT = { min: 50, max: 79 } as const;

/** How the chain figures were obtained. */
export type ChainMethod = 'bpf-hash-walk' | 'model';
/** How the entries were counted: during the in-kernel walk, or from a ctnetlink dump. */
export type OccupancyMethod = 'bpf-hash-walk' | 'ctnetlink-dump';

export interface CensusGroupRow {
  family: 'ipv4' | 'ipv6';
  proto: string;
  protoNum: number;
  /** original direction's destination port; 0 for protocols without ports */
  port: number;
  /** TCP state as `conntrack -L` names it; null for protocols without state */
  state: string | null;
  entries: number;
  assured: number;
  unreplied: number;
}

export interface CensusAddrRow {
  family: 'ipv4' | 'ipv6';
  addr: string;
  entries: number;
}

export interface CensusNamespace {
  inode: number;
  name: string;
  /** who lives in it (model/owner.ts) */
  owner?: NetnsOwner;
  entries: number;
  assured: number;
  /** never saw a reply: what early drop evicts first */
  unreplied: number;
  groups: CensusGroupRow[];
  topSources: CensusAddrRow[];
  topDestinations: CensusAddrRow[];
  distinctSources: number;
  distinctDestinations: number;
  /** entries not attributed to an address: the bounded address table was full */
  sourceOverflow: number;
  destinationOverflow: number;
  /** entries not counted: ctnetlink messages that did not parse, or (walk) a full group table */
  uncounted: number;
  /** seconds left on TCP entries per state: the non-empty slots of a histogram with 4 slots per
   * power of two (hiS null: no upper bound); null when the census could not read timeouts */
  tcpRemaining: { state: string; slots: { loS: number; hiS: number | null; entries: number }[] }[] | null;
  /** TCP entries missing from tcpRemaining because the walk's bounded table of
   * (namespace, state) pairs was full; 0 for the ctnetlink dump */
  tcpRemainingOverflow: number;
}

export interface SlabInfo {
  name: string;
  activeObjs: number;
  numObjs: number;
  objSizeBytes: number;
  /** pages held by the cache: num_slabs x pagesperslab x page size */
  bytes: number;
}

export interface ChainHistogramRow {
  /** chain length */
  k: number;
  /** the last row: k or more */
  orMore: boolean;
  /** buckets with this chain length (expected value under the model) */
  buckets: number;
}

export interface BucketPressure {
  /** bpf-hash-walk: every bucket walked in the kernel; model: Poisson, uniform hash */
  method: ChainMethod;
  /** why the walk was not used, when method is model */
  fallbackReason?: string;
  buckets: number;
  /** chain nodes: each entry is hashed twice, once per direction */
  nodes: number;
  /** nodes per bucket */
  loadFactor: number;
  histogram: ChainHistogramRow[];
  /** longest chain (model: the longest length at least one bucket is expected to reach) */
  longestChain: number;
  chainLimit: { min: number; max: number };
  /** chainLimit.min - longestChain: how much a chain may still grow before inserts can be refused */
  headroom: number;
  /** buckets whose chain did not end in its own nulls marker (entries moved under RCU); walked again */
  rewalkedBuckets?: number;
  /** buckets still inconsistent after the re-walk, left out of the histogram */
  inconsistentBuckets?: number;
  /** walks started over on the new table because a resize (nf_conntrack_buckets changed) landed during them */
  resizeRestarts?: number;
  /** walk only: how the table was found, BPF runs and their time */
  locatedBy?: WalkResult['locatedBy'];
  runs?: number;
  /** threads that shared the runs */
  threads?: number;
  reads?: WalkResult['reads'];
  bucketsPerRun?: number;
  maxRunMs?: number;
  walkMs?: number;
  walkCpuMs?: number;
  phasesMs?: WalkResult['phasesMs'];
}

export interface ChainRates {
  method: 'ctnetlink-stats';
  windowMs: number;
  searchRestart: number;
  chainTooLong: number;
  searchRestartPerSec: number;
  chainTooLongPerSec: number;
}

export interface CensusReport {
  schema: typeof CENSUS_SCHEMA;
  takenAt: string;
  /** time the counting took (the walk, or the ctnetlink dumps of every namespace) */
  occupancyMs: number;
  methods: {
    occupancy: OccupancyMethod;
    /** why the in-kernel count was not used */
    occupancyFallbackReason?: string;
    entrySize: 'btf' | 'unavailable';
    slab: 'slabinfo' | 'unavailable';
    chains: ChainMethod;
    rates: 'ctnetlink-stats';
  };
  entries: number;
  assured: number;
  unreplied: number;
  /** every namespace's entry count (ctnetlink statistics) before and after the census: the hash holds 2 nodes per entry */
  hashEntries: { before: number; after: number };
  namespaces: CensusNamespace[];
  memory: {
    /** sizeof(struct nf_conn) from the kernel's BTF (extensions come on top) */
    entryBytes: number | null;
    /** entries x entryBytes */
    expectedBytes: number | null;
    slab: SlabInfo | null;
  };
  buckets: BucketPressure;
  rates: ChainRates;
}

/** What the source read; the model turns it into the report. */
export interface CensusInput {
  takenAt: string;
  /** how entries were counted, and why not in the kernel when not */
  occupancy: OccupancyMethod;
  occupancyFallbackReason?: string;
  occupancyMs: number;
  namespaces: { inode: number; name: string; owner?: NetnsOwner; census: CensusCounts }[];
  /** nf_conntrack_buckets */
  buckets: number;
  /** entries in the whole (global) hash: every namespace's count, after the census and before it */
  hashEntries: number;
  hashEntriesBefore: number;
  entryBytes: number | null;
  slab: SlabInfo | null;
  /** measured chains, or null for the model */
  walk: WalkResult | null;
  walkFallbackReason?: string;
  stats: { windowMs: number; before: { searchRestart: number; chainTooLong: number }; after: { searchRestart: number; chainTooLong: number } };
}

/** What a walk of the hash returns. */
export interface WalkResult {
  buckets: number;
  /** buckets per chain length; the last index is "this many or more" */
  histogram: number[];
  /** the histogram's last slot is the walker's "that or more" slot */
  histogramLastIsOrMore: boolean;
  nodes: number;
  longestChain: number;
  rewalkedBuckets: number;
  inconsistentBuckets: number;
  /** walks started over because nf_conntrack_buckets changed during them (a resize replaces the table) */
  resizeRestarts?: number;
  /** how the table's address was found */
  /** kallsyms: the symbol's address; own-entry: an entry ctop made with the conntrack kfuncs in a
   * namespace of its own; live-entry: a confirmed entry of live traffic; private-entry: a datagram
   * ctop sent in a private namespace made with ip and nft */
  locatedBy: 'kallsyms' | 'own-entry' | 'live-entry' | 'private-entry';
  /** BPF runs the walk took (bounded work per run) and their total time */
  runs: number;
  /** threads that ran the runs side by side (each run is one BPF program run on one CPU) */
  threads?: number;
  /** how the walk read kernel memory: direct (plain loads through bpf_rdonly_cast, several
   * chains side by side; Linux >= 6.2) or probe-read (bpf_probe_read_kernel per read) */
  reads?: 'direct' | 'probe-read';
  /** buckets per run (sized from the load factor to bound the nodes per run) and the longest run */
  bucketsPerRun: number;
  maxRunMs: number;
  walkMs: number;
  /** CPU time the walking threads spent on their runs, summed over the threads */
  walkCpuMs?: number;
  /** where the time went: loading the programs, finding the table, walking, reading the counts;
   * startWaitMs when loading and finding ran on a native thread beside the command's start-up
   * (`ctop census`): each step's own time, and how long the command then waited for them */
  phasesMs?: { loadMs: number; locateMs: number; walkMs: number; readMs: number; startWaitMs?: number };
}

function remainingRows(c: CensusCounts): CensusNamespace['tcpRemaining'] {
  if (!c.tcpRemaining) return null;
  return c.tcpRemaining.map((r) => ({
    state: tcpStateName(r.state) ?? String(r.state),
    slots: r.slots.flatMap((entries, k) => {
      if (entries === 0) return [];
      const [loS, hi] = slotRange(k);
      return [{ loS, hiS: Number.isFinite(hi) ? hi : null, entries }];
    }),
  }));
}

function addrRows(a: CensusCountsAddr[]): CensusAddrRow[] {
  return a.map((x) => ({ family: family(x.family), addr: x.addr, entries: x.entries }));
}

export function chainPressure(
  input: Pick<CensusInput, 'buckets' | 'hashEntries' | 'walk' | 'walkFallbackReason'>,
): BucketPressure {
  const limit = { ...CHAIN_LIMIT };
  if (input.walk) {
    const w = input.walk;
    const last = w.histogram.length - 1;
    return {
      method: 'bpf-hash-walk',
      buckets: w.buckets,
      nodes: w.nodes,
      loadFactor: w.buckets > 0 ? w.nodes / w.buckets : 0,
      histogram: w.histogram.map((b, k) => ({ k, orMore: w.histogramLastIsOrMore && k === last, buckets: b })),
      longestChain: w.longestChain,
      chainLimit: limit,
      headroom: limit.min - w.longestChain,
      rewalkedBuckets: w.rewalkedBuckets,
      inconsistentBuckets: w.inconsistentBuckets,
      resizeRestarts: w.resizeRestarts ?? 0,
      locatedBy: w.locatedBy,
      runs: w.runs,
      ...(w.threads !== undefined ? { threads: w.threads } : {}),
      ...(w.reads !== undefined ? { reads: w.reads } : {}),
      bucketsPerRun: w.bucketsPerRun,
      maxRunMs: w.maxRunMs,
      walkMs: w.walkMs,
      ...(w.walkCpuMs !== undefined ? { walkCpuMs: w.walkCpuMs } : {}),
      phasesMs: w.phasesMs,
    };
  }
  const nodes = 2 * input.hashEntries;
  const m = bucketModel(nodes, input.buckets);
  const longest = modelLongestChain(nodes, input.buckets);
  return {
    method: 'model',
    fallbackReason: input.walkFallbackReason ?? 'the chain walk was not asked for',
    buckets: input.buckets,
    nodes,
    loadFactor: m.loadFactor,
    histogram: m.histogram,
    longestChain: longest,
    chainLimit: limit,
    headroom: limit.min - longest,
  };
}

export function buildCensus(input: CensusInput): CensusReport {
  const namespaces: CensusNamespace[] = input.namespaces.map(({ inode, name, owner, census: c }) => ({
    inode,
    name,
    ...(owner ? { owner } : {}),
    entries: c.entries,
    assured: c.assured,
    unreplied: c.unreplied,
    groups: c.groups.map((g) => ({
      family: family(g.family),
      proto: protoName(g.l4proto),
      protoNum: g.l4proto,
      port: g.port,
      state: tcpStateName(g.state),
      entries: g.entries,
      assured: g.assured,
      unreplied: g.unreplied,
    })),
    topSources: addrRows(c.srcs),
    topDestinations: addrRows(c.dsts),
    distinctSources: c.distinctSrcs,
    distinctDestinations: c.distinctDsts,
    sourceOverflow: c.srcOverflow,
    destinationOverflow: c.dstOverflow,
    uncounted: c.parseErrors + c.groupOverflow,
    tcpRemaining: remainingRows(c),
    tcpRemainingOverflow: c.remainOverflow ?? 0,
  }));
  const sum = (f: (n: CensusNamespace) => number) => namespaces.reduce((a, n) => a + f(n), 0);
  const entries = sum((n) => n.entries);
  const windowMs = input.stats.windowMs;
  const perSec = (d: number) => (windowMs > 0 ? (d * 1000) / windowMs : 0);
  const dRestart = Math.max(0, input.stats.after.searchRestart - input.stats.before.searchRestart);
  const dTooLong = Math.max(0, input.stats.after.chainTooLong - input.stats.before.chainTooLong);
  return {
    schema: CENSUS_SCHEMA,
    takenAt: input.takenAt,
    occupancyMs: input.occupancyMs,
    methods: {
      occupancy: input.occupancy,
      ...(input.occupancyFallbackReason ? { occupancyFallbackReason: input.occupancyFallbackReason } : {}),
      entrySize: input.entryBytes === null ? 'unavailable' : 'btf',
      slab: input.slab === null ? 'unavailable' : 'slabinfo',
      chains: input.walk ? 'bpf-hash-walk' : 'model',
      rates: 'ctnetlink-stats',
    },
    entries,
    assured: sum((n) => n.assured),
    unreplied: sum((n) => n.unreplied),
    hashEntries: { before: input.hashEntriesBefore, after: input.hashEntries },
    namespaces,
    memory: {
      entryBytes: input.entryBytes,
      expectedBytes: input.entryBytes === null ? null : entries * input.entryBytes,
      slab: input.slab,
    },
    buckets: chainPressure(input),
    rates: {
      method: 'ctnetlink-stats',
      windowMs,
      searchRestart: input.stats.after.searchRestart,
      chainTooLong: input.stats.after.chainTooLong,
      searchRestartPerSec: perSec(dRestart),
      chainTooLongPerSec: perSec(dTooLong),
    },
  };
}

/** One /proc/slabinfo line (version 2.1) for cache `name`, or null. */
export function parseSlabinfo(text: string, name: string, pageBytes: number): SlabInfo | null {
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== name) continue;
    // name active_objs num_objs objsize objperslab pagesperslab : tunables l b s : slabdata active num shared
    const n = f.slice(1).map(Number);
    const slabdata = f.indexOf('slabdata');
    if (n.length < 5 || slabdata < 0) return null;
    const numSlabs = Number(f[slabdata + 2]);
    const pagesPerSlab = n[4]!;
    if (![n[0], n[1], n[2], numSlabs, pagesPerSlab].every((x) => Number.isFinite(x))) return null;
    return { name, activeObjs: n[0]!, numObjs: n[1]!, objSizeBytes: n[2]!, bytes: numSlabs * pagesPerSlab * pageBytes };
  }
  return null;
}

/** Per (family, protocol, port): entries summed over states, for the "by port" view. */
export function byPort(groups: CensusGroupRow[]): { family: string; proto: string; port: number; entries: number; assured: number; unreplied: number }[] {
  const m = new Map<string, { family: string; proto: string; port: number; entries: number; assured: number; unreplied: number }>();
  for (const g of groups) {
    const k = `${g.family}/${g.proto}/${g.port}`;
    const r = m.get(k) ?? { family: g.family, proto: g.proto, port: g.port, entries: 0, assured: 0, unreplied: 0 };
    r.entries += g.entries;
    r.assured += g.assured;
    r.unreplied += g.unreplied;
    m.set(k, r);
  }
  return [...m.values()].sort((a, b) => b.entries - a.entries || a.proto.localeCompare(b.proto) || a.port - b.port);
}
