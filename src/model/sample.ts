/**
 * The typed boundary between data sources (the kernel, a replay file, a fake
 * in tests) and everything above them. A Sample holds cumulative counters;
 * the model turns two samples into a window.
 */
import type { NetnsOwner } from './owner.js';
import type { Family } from './conntrack.js';
import type { RoleCounts } from './roles.js';

/** Probe tiers, best first: the order the live source tries them. */
export const TIERS = ['fentry', 'kprobe', 'netfilter', 'stats'] as const;
export type Tier = (typeof TIERS)[number];
/** The tiers that load BPF programs (all but statistics only). */
export type BpfTier = Exclude<Tier, 'stats'>;

export interface ProgramStatus {
  name: string;
  /** Where it hooks, as the addon reports it: its section ("fexit/__nf_conntrack_confirm", "tp_btf/kfree_skb, reason NETFILTER_DROP") or, for the netfilter program, the hooks each namespace links it at. */
  hook: string;
  attached: boolean;
  /** Why it is not attached, in the kernel's words. */
  error?: string;
  /** Runs the kernel skipped since ctop loaded it because it was already running on that CPU (a softirq interrupted it): the events of those runs are not in ctop's counts. */
  skippedRuns?: number;
}

export interface ProbeInfo {
  tier: Tier;
  programs: ProgramStatus[];
  /** Tiers tried before this one and why each was refused. */
  refused: { tier: Tier; reason: string }[];
}

/** One CPU's conntrack statistics (ctnetlink's per-CPU stats). */
export interface CtCpuStat {
  cpu: number;
  found: number;
  invalid: number;
  insert: number;
  insertFailed: number;
  drop: number;
  earlyDrop: number;
  error: number;
  searchRestart: number;
  clashResolve: number;
  chainTooLong: number;
}

export interface PortCount {
  netns: number;
  family: Family;
  proto: number;
  port: number;
  /** the sum of `roles` */
  inserts: number;
  drops: number;
  /** the inserts by how the entry came to be (./roles.ts) */
  roles: RoleCounts;
}

/** Per-port entry life cycle (function tiers), cumulative since the probe
 * loaded. `entries` is inserts minus deletions since then: the live entries
 * ctop saw inserted; entries older than the probe are not in it, and their
 * deletion makes it smaller (it can go below zero). */
export interface PortEvents {
  netns: number;
  family: Family;
  proto: number;
  port: number;
  entries: number;
  deletes: number;
  earlyDrops: number;
  insertFailed: number;
  clashes: number;
}

/** One tuple's counts, shaped as the snapshot's tuple row (TupleRow) so the
 * live path hands decoded rows through without copying 64,000 objects a tick. */
export interface TupleCount {
  netns: number;
  family: Family;
  /** protocol name (protoName), the number in protoNum */
  proto: string;
  protoNum: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  inserts: number;
  drops: number;
}

/**
 * A window's moved tuples read in place, one fixed-size record each, as the
 * native core hands them over: the live screen ranks, filters and sums them
 * through these accessors and builds a row object only for the tuples a view
 * shows. With 64,000 tuples moving every second, one object per tuple per
 * tick (and the collector behind them) was most of a refresh's cost.
 */
export interface TupleColumns {
  readonly length: number;
  netns(i: number): number;
  family(i: number): Family;
  protoNum(i: number): number;
  /** protocol name (protoName) */
  proto(i: number): string;
  src(i: number): string;
  /** the source address as a key for grouping: cheaper than src() where many tuples share it */
  srcKey(i: number): number | string;
  sport(i: number): number;
  dst(i: number): string;
  dport(i: number): number;
  inserts(i: number): number;
  drops(i: number): number;
  /** the tuple as a row object (built on each call: for the rows a view shows) */
  row(i: number): TupleCount;
}

/** One string per 5-tuple and namespace, for joining and windowing. */
export function tupleKey(t: TupleCount): string {
  return `${t.netns}/${t.family}/${t.protoNum}/${t.src}/${t.sport}/${t.dst}/${t.dport}`;
}

/** Conntrack statistics summed over CPUs (cumulative, from ctnetlink). */
export type CtStats = Omit<CtCpuStat, 'cpu'>;

export interface NetnsSample {
  inode: number;
  name: string;
  /** who lives in it: a pod, a container, a unit, an `ip netns` name, the host */
  owner?: NetnsOwner;
  /** Entries in this namespace's table now. */
  count: number;
  stats: CtStats;
  /** Netfilter links ctop holds there (0 in the statistics tier). */
  links: number;
}

export interface Totals {
  inserts: number;
  drops: number;
  portOverflow: number;
  tupleOverflow: number;
  dropUnparsed: number;
  netnsOverflow: number;
  otherNfDrops: number;
  dropTupleOverflow: number;
  /** Function tiers only (0 otherwise): entries that left the table, of them
   * evicted by early_drop(), confirms refused, races resolved. */
  deletes?: number;
  earlyDrops?: number;
  insertFailed?: number;
  clashes?: number;
}

export interface Sample {
  /** Monotonic clock, for rates. */
  monoMs: number;
  wallTime: string;
  probe: ProbeInfo;
  /** Cumulative since the probe loaded; empty in the statistics tier. */
  ports: PortCount[];
  /** Cumulative per tuple, from a source that keeps them so (a fake source in
   * tests). The kernel source leaves it empty: its tuples come as growth, from
   * Source.takeTupleGrowth(). */
  tuples: TupleCount[];
  /** Function tiers: per-port entry life cycle (empty in other tiers). */
  events?: PortEvents[];
  totals: Totals;
  namespaces: NetnsSample[];
  /** Global limits (net.netfilter.*). */
  max: number;
  buckets: number;
  capacity: { ports: number; tuples: number; dropTuples: number };
  /** Keys in the per-port hash, which `capacity.ports` bounds. The kernel
   * source counts a port first in per-CPU direct-mapped slots, outside the
   * hash, so `ports` can outnumber the capacity; absent (a source without
   * slots): every port row is in the map. */
  portHashEntries?: number;
  /** Entries in the per-tuple insert and drop maps (counted in the kernel). */
  tupleEntries: number;
  dropTupleEntries: number;
  /** Namespaces ctop could not watch, and why. */
  netnsErrors: { name: string; error: string }[];
}

/** Where samples come from. source/windows.ts turns them into windows (model/snapshot.ts WindowSource). */
export interface Source {
  start(): Promise<void>;
  /** The cumulative counters now. A read: taking one changes nothing. */
  sample(): Sample;
  /**
   * The tuples whose counts grew since the previous call (the first call:
   * since start), with the growth as counts. Taking it starts the next
   * tuple window, so only the window pipeline calls it, once per window.
   */
  takeTupleGrowth?(): TupleCount[];
  /** The same, read in place rather than one object per tuple (the live screen's choice). */
  takeTupleColumns?(): TupleColumns;
  /** Keeps the watched namespaces current between samples (cheap: no map reads). */
  rescanIfDue?(): void;
  close(): void;
}

export const ZERO_STATS: CtStats = {
  found: 0,
  invalid: 0,
  insert: 0,
  insertFailed: 0,
  drop: 0,
  earlyDrop: 0,
  error: 0,
  searchRestart: 0,
  clashResolve: 0,
  chainTooLong: 0,
};

export function sumCpuStats(cpus: CtCpuStat[]): CtStats {
  const s: CtStats = { ...ZERO_STATS };
  for (const c of cpus) {
    for (const k of Object.keys(s) as (keyof CtStats)[]) s[k] += c[k];
  }
  return s;
}
