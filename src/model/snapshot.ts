/**
 * The snapshot contract (`ctop snapshot --json`, schema ctop.snapshot/v1),
 * and the pure function that turns two cumulative samples into one window.
 * Fields are only ever added to v1, never renamed or removed.
 */
import type { NetnsOwner } from './owner.js';
import type { BucketPressure, CensusReport } from './census.js';
import { hashSection, heldByPort, occupancySection, type OccupancyInput, type OccupancySection } from './occupancy.js';
import { portKey, protoName, type PortIdentity } from './conntrack.js';
import { TRAFFIC_ROLES, zeroRoleCounts, type RoleCounts } from './roles.js';
import { topK } from './topK.js';
import { tupleKey, type TupleColumns, type CtStats, type PortCount, type PortEvents, type ProbeInfo, type Sample, type TupleCount } from './sample.js';
import { ratio, round } from './numbers.js';

export const SNAPSHOT_SCHEMA = 'ctop.snapshot/v1';

export interface PortRow extends PortIdentity {
  inserts: number;
  drops: number;
  /** The window's inserts by how each entry came to be (src/model/roles.ts);
   * they add up to `inserts`. Every BPF tier counts them; absent only in
   * recordings made by a ctop that did not. */
  roles?: RoleCounts;
  /** Function tiers (fentry, kprobe) only. `entries`: live entries on this
   * port that were inserted since ctop loaded (inserts minus deletions; older
   * entries are not in it). The rest count over the window. */
  entries?: number;
  deletes?: number;
  earlyDrops?: number;
  insertFailed?: number;
  clashes?: number;
  /** entries this port holds in the table (the `occupancy` section says how
   * and how long ago they were counted); absent without a census */
  occupancy?: number;
}

/** A tuple's row: the sample's tuple record as it is (model/sample.ts TupleCount). */
export type TupleRow = TupleCount;

export interface NamespaceRow {
  inode: number;
  name: string;
  /** who lives in it (kind, name, namespace, uid, containers): absent where ctop did not look */
  owner?: NetnsOwner;
  count: number;
  fillRatio: number;
  inserts: number | null;
  drops: number;
  earlyDrops: number;
  insertFailed: number;
  /** The window's conntrack statistics in this namespace (every `conntrack -S` counter, summed over CPUs). */
  stats?: CtStats;
}

export interface SnapshotV1 {
  schema: typeof SNAPSHOT_SCHEMA;
  host: string;
  kernel: string;
  startedAt: string;
  durationMs: number;
  probe: ProbeInfo;
  table: { count: number; max: number; buckets: number; fillRatio: number };
  rates: {
    /** null in the statistics tier: only the BPF programs see inserts */
    insertsPerSec: number | null;
    dropsPerSec: number;
    earlyDropsPerSec: number;
    insertFailedPerSec: number;
    clashResolvePerSec: number;
    searchRestartPerSec: number;
    chainTooLongPerSec: number;
    invalidPerSec: number;
  };
  /** Totals over the window. `drops` is the kernel's statistic; `dropsAttributed` what the BPF program matched to packets. */
  totals: {
    inserts: number | null;
    drops: number;
    dropsAttributed: number | null;
    earlyDrops: number;
    insertFailed: number;
    clashResolve: number;
    searchRestart: number;
    chainTooLong: number;
    invalid: number;
  };
  ports: PortRow[];
  tuples: TupleRow[];
  namespaces: NamespaceRow[];
  overflow: {
    /** events not recorded per port / per tuple because the map was full (cumulative since load) */
    portMapFull: number;
    /** inserts not recorded per tuple */
    tupleMapFull: number;
    /** drops not recorded per tuple (the drop victims have a map of their own) */
    dropTupleMapFull: number;
    /** keys in the per-port hash, which portMapCapacity bounds; ports counted
     * in the per-CPU slots are not in it (so `ports` may hold more rows) */
    portMapEntries: number;
    portMapCapacity: number;
    tupleMapEntries: number;
    tupleMapCapacity: number;
    dropTupleMapEntries: number;
    dropTupleMapCapacity: number;
    /** drops counted in totals whose packet headers could not be read */
    dropsUnparsed: number;
    /** drops not matched: the per-namespace drop baseline map was full */
    netnsMapFull: number;
    /** rows left out of this report by --top */
    portsOmitted: number;
    tuplesOmitted: number;
  };
  /** Namespaces that could not be watched, and why. */
  netnsErrors: { name: string; error: string }[];
  /** `snapshot --census`: what the table held at the window's end (ctop.census/v1) */
  census?: CensusReport;
  /** who holds the table: entries per namespace and port from the latest census */
  occupancy?: OccupancySection;
  /** chain lengths of the hash: measured by the latest census's walk, else the model */
  hashBuckets?: BucketPressure & { takenAt: string; ageMs: number };
  /** the live screen's tuples, read in place, when the source handed columns
   * (then `tuples` is empty); never serialized (not enumerable) */
  tupleColumns?: TupleColumns;
}

/**
 * Where windows come from (source/windows.ts: live; source/replay.ts: a
 * recording). A consumer with a clock calls next() once per tick; a throw
 * means the source failed this time and may work the next.
 */
export interface WindowSource {
  /** "live" or "replay FILE", for headers. */
  readonly label: string;
  /** The next window; undefined when there is none yet (live: before the first tick) or no more (replay: the end). */
  next(): SnapshotV1 | undefined;
  /** Replay position, for headers. */
  position?(): { index: number; total: number; ended: boolean };
  /** Why the background census failed, if its last attempt did. */
  occupancyError?(): string | undefined;
  close(): void;
}

export interface WindowOptions {
  host: string;
  kernel: string;
  /** rows kept in ports/tuples, busiest first; 0 keeps all */
  top: number;
  /** with top 0: leave rows in map order, for callers that rank them
   * themselves (the live UI ranks only what it shows) */
  unsorted?: boolean;
  /** The source's own tuple window for a..b (Source.takeTupleGrowth, taken at
   * b); without it the tuples are the difference of a's and b's cumulative ones. */
  tupleGrowth?: TupleCount[];
  /** The same window read in place (Source.takeTupleColumns): the live screen's,
   * which builds rows only for what it shows; `tuples` is then empty */
  tupleColumns?: TupleColumns;
}

const keyOfTuple = tupleKey;

interface Keyed<T> {
  row: T;
  key: string;
}

/** Rows of `b` that moved since `a`, with their window counts. Each row's key
 * is built once: with tens of thousands of tuples a tick, key building and
 * comparing dominate the cost. */
function delta<T extends { inserts: number; drops: number }>(
  a: T[],
  b: T[],
  key: (x: T) => string,
  more?: (x: T, prev: T | undefined) => Partial<T>,
): Keyed<T>[] {
  const before = new Map<string, T>();
  for (const x of a) before.set(key(x), x);
  const out: Keyed<T>[] = [];
  for (const x of b) {
    const k = key(x);
    const prev = before.get(k);
    const inserts = x.inserts - (prev?.inserts ?? 0);
    const drops = x.drops - (prev?.drops ?? 0);
    if (inserts > 0 || drops > 0) out.push({ row: { ...x, inserts, drops, ...more?.(x, prev) }, key: k });
  }
  return out;
}

/** A port's inserts by role over the window (cumulative in the samples). */
function roleDelta(x: PortCount, prev: PortCount | undefined): Partial<PortCount> {
  if (!x.roles) return {};
  const roles = zeroRoleCounts();
  for (const r of TRAFFIC_ROLES) roles[r] = x.roles[r] - (prev?.roles?.[r] ?? 0);
  return { roles };
}

/** Busiest first: inserts, then drops, then the key (a stable order). */
function busier<T extends { inserts: number; drops: number }>(x: Keyed<T>, y: Keyed<T>): number {
  return y.row.inserts - x.row.inserts || y.row.drops - x.row.drops || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
}

/** The `top` busiest rows in order (all of them, sorted, for top 0). */
function busiest<T extends { inserts: number; drops: number }>(rows: Keyed<T>[], top: number): T[] {
  if (top <= 0) return rows.sort(busier).map((k) => k.row);
  return topK(rows, top, (x, y) => busier(x, y) < 0).map((k) => k.row);
}

function statDelta(a: CtStats | undefined, b: CtStats): CtStats {
  const out = { ...b };
  if (!a) return out;
  for (const k of Object.keys(out) as (keyof CtStats)[]) out[k] = Math.max(0, b[k] - a[k]);
  return out;
}

/** One window: what happened between samples a and b (and, given a census, who holds the table at b). */
export function buildSnapshot(a: Sample, b: Sample, o: WindowOptions, occupancy?: OccupancyInput): SnapshotV1 {
  const durationMs = Math.max(1, b.monoMs - a.monoMs);
  const perSec = (n: number): number => round((n * 1000) / durationMs);
  const bpf = b.probe.tier !== 'stats';
  const ranked = !(o.top === 0 && o.unsorted);

  const portRows = delta(a.ports, b.ports, portKey, roleDelta);
  // Function tiers: each port's entry life cycle. A port whose entries were
  // only deleted or evicted in the window still gets a row.
  const evB = new Map((b.events ?? []).map((e) => [portKey(e), e]));
  const evA = new Map((a.events ?? []).map((e) => [portKey(e), e]));
  const funcTier = b.probe.tier === 'fentry' || b.probe.tier === 'kprobe';
  if (evB.size > 0) {
    const listed = new Set(portRows.map((r) => r.key));
    for (const [k, e] of evB) {
      if (listed.has(k) || e.deletes === (evA.get(k)?.deletes ?? 0)) continue;
      portRows.push({
        key: k,
        row: { netns: e.netns, family: e.family, proto: e.proto, port: e.port, inserts: 0, drops: 0, roles: zeroRoleCounts() },
      });
    }
  }
  const lifeCycle = (p: PortCount): Partial<PortRow> => {
    const k = portKey(p);
    const e = evB.get(k);
    if (!e) return funcTier ? { entries: 0, deletes: 0, earlyDrops: 0, insertFailed: 0, clashes: 0 } : {};
    const was: PortEvents | undefined = evA.get(k);
    return {
      entries: e.entries,
      deletes: e.deletes - (was?.deletes ?? 0),
      earlyDrops: e.earlyDrops - (was?.earlyDrops ?? 0),
      insertFailed: e.insertFailed - (was?.insertFailed ?? 0),
      clashes: e.clashes - (was?.clashes ?? 0),
    };
  };
  // Ports that hold entries get a row even with nothing new in the window:
  // holding the table is what the operator asks about when it is full.
  const held = occupancy ? heldByPort(occupancy, b.events) : undefined;
  if (held) {
    const listed = new Set(portRows.map((r) => r.key));
    for (const [k, h] of held) {
      if (h.entries > 0 && !listed.has(k)) portRows.push({ key: k, row: { netns: h.netns, family: h.row.family, proto: h.row.proto, port: h.row.port, inserts: 0, drops: 0, roles: zeroRoleCounts() } });
    }
  }
  const tupleRows = o.tupleColumns ? [] : (o.tupleGrowth ?? delta(a.tuples, b.tuples, keyOfTuple).map((k) => k.row));
  const ports = ranked ? busiest(portRows, o.top) : portRows.map((k) => k.row);
  // a tuple's key only breaks ties when ranking: unranked callers (the live
  // screen, 64,000 tuples a second) do not build it
  const tuples = ranked ? busiest(tupleRows.map((row) => ({ row, key: keyOfTuple(row) })), o.top) : tupleRows;

  const before = new Map(a.namespaces.map((n) => [n.inode, n]));
  const nsInserts = new Map<number, number>();
  for (const { row: p } of portRows) {
    nsInserts.set(p.netns, (nsInserts.get(p.netns) ?? 0) + p.inserts);
  }
  const sum: CtStats = { found: 0, invalid: 0, insert: 0, insertFailed: 0, drop: 0, earlyDrop: 0, error: 0, searchRestart: 0, clashResolve: 0, chainTooLong: 0 };
  const namespaces: NamespaceRow[] = [];
  let count = 0;
  for (const n of b.namespaces) {
    const d = statDelta(before.get(n.inode)?.stats, n.stats);
    for (const k of Object.keys(sum) as (keyof CtStats)[]) sum[k] += d[k];
    count += n.count;
    namespaces.push({
      inode: n.inode,
      name: n.name,
      ...(n.owner ? { owner: n.owner } : {}),
      count: n.count,
      fillRatio: round(ratio(n.count, b.max), 4),
      inserts: bpf ? (nsInserts.get(n.inode) ?? 0) : null,
      drops: d.drop,
      earlyDrops: d.earlyDrop,
      insertFailed: d.insertFailed,
      stats: d,
    });
  }
  namespaces.sort((x, y) => y.count - x.count || x.inode - y.inode);
  const inserts = bpf ? b.totals.inserts - a.totals.inserts : null;
  const dropsAttributed = bpf ? b.totals.drops - a.totals.drops : null;

  const snap: SnapshotV1 = {
    schema: SNAPSHOT_SCHEMA,
    host: o.host,
    kernel: o.kernel,
    startedAt: a.wallTime,
    durationMs: Math.round(durationMs),
    probe: b.probe,
    // The limit is global but checked against each namespace's own count:
    // the fullest namespace is the one that drops first.
    table: {
      count,
      max: b.max,
      buckets: b.buckets,
      fillRatio: round(ratio(Math.max(0, ...b.namespaces.map((n) => n.count)), b.max), 4),
    },
    rates: {
      insertsPerSec: inserts === null ? null : perSec(inserts),
      dropsPerSec: perSec(sum.drop),
      earlyDropsPerSec: perSec(sum.earlyDrop),
      insertFailedPerSec: perSec(sum.insertFailed),
      clashResolvePerSec: perSec(sum.clashResolve),
      searchRestartPerSec: perSec(sum.searchRestart),
      chainTooLongPerSec: perSec(sum.chainTooLong),
      invalidPerSec: perSec(sum.invalid),
    },
    totals: {
      inserts,
      drops: sum.drop,
      dropsAttributed,
      earlyDrops: sum.earlyDrop,
      insertFailed: sum.insertFailed,
      clashResolve: sum.clashResolve,
      searchRestart: sum.searchRestart,
      chainTooLong: sum.chainTooLong,
      invalid: sum.invalid,
    },
    ports: ports.map((p) => ({
      netns: p.netns,
      family: p.family,
      proto: protoName(p.proto),
      protoNum: p.proto,
      port: p.port,
      inserts: p.inserts,
      drops: p.drops,
      ...(p.roles ? { roles: p.roles } : {}),
      ...lifeCycle(p),
      ...(held ? { occupancy: held.get(portKey(p))?.entries ?? 0 } : {}),
    })),
    tuples,
    namespaces,
    overflow: {
      portMapFull: b.totals.portOverflow,
      tupleMapFull: b.totals.tupleOverflow,
      dropTupleMapFull: b.totals.dropTupleOverflow,
      portMapEntries: b.portHashEntries ?? b.ports.length,
      portMapCapacity: b.capacity.ports,
      tupleMapEntries: b.tupleEntries,
      tupleMapCapacity: b.capacity.tuples,
      dropTupleMapEntries: b.dropTupleEntries,
      dropTupleMapCapacity: b.capacity.dropTuples,
      dropsUnparsed: b.totals.dropUnparsed,
      netnsMapFull: b.totals.netnsOverflow,
      portsOmitted: portRows.length - ports.length,
      tuplesOmitted: tupleRows.length - tuples.length,
    },
    netnsErrors: b.netnsErrors,
    ...(occupancy && held
      ? { occupancy: occupancySection(occupancy, held, b.wallTime, o.top), hashBuckets: hashSection(occupancy, b.wallTime) }
      : {}),
  };
  // columns are for the screen in this process: a recording or JSON never holds them
  if (o.tupleColumns) Object.defineProperty(snap, 'tupleColumns', { value: o.tupleColumns, enumerable: false });
  return snap;
}

/** The snapshot cut down to one namespace: its ports, its totals, its row. */
export function forNamespace(s: SnapshotV1, inode: number): SnapshotV1 {
  const ports = s.ports.filter((p) => p.netns === inode);
  const tuples = s.tuples.filter((t) => t.netns === inode);
  const namespaces = s.namespaces.filter((n) => n.inode === inode);
  const count = namespaces[0]?.count ?? 0;
  const inserts = s.totals.inserts === null ? null : ports.reduce((a, p) => a + p.inserts, 0);
  return {
    ...s,
    ports,
    tuples,
    namespaces,
    table: { ...s.table, count, fillRatio: s.table.max > 0 ? count / s.table.max : 0 },
    totals: { ...s.totals, inserts },
  };
}
