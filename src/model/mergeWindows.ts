/**
 * Consecutive windows as one (`snapshot --replay`, `advise --replay`): what
 * the whole recording saw, shaped as a single ctop.snapshot/v1 window. Pure.
 *
 * Counts over the window (inserts, drops, per-role, life-cycle events) are
 * summed; states (entries now, limits, map use, cumulative overflow
 * counters) come from the last window. A recorded window lists only its top
 * rows, so a port's sum counts the windows where it made the list: exact for
 * busy ports, a lower bound for quiet ones (portsOmitted says how many rows
 * the windows left out).
 */
import { portKey } from './conntrack.js';
import { TRAFFIC_ROLES, zeroRoleCounts } from './roles.js';
import { ZERO_STATS, tupleKey, type CtStats } from './sample.js';
import type { NamespaceRow, PortRow, SnapshotV1, TupleRow } from './snapshot.js';
import { topK } from './topK.js';
import { round } from './numbers.js';

type Summed = 'inserts' | 'drops';

function sumRows<T extends { inserts: number; drops: number }>(rows: Iterable<T>, key: (r: T) => string, add: (into: T, r: T) => void): Map<string, T> {
  const out = new Map<string, T>();
  for (const r of rows) {
    const k = key(r);
    const have = out.get(k);
    if (!have) out.set(k, structuredClone(r));
    else {
      for (const f of ['inserts', 'drops'] as Summed[]) have[f] += r[f];
      add(have, r);
    }
  }
  return out;
}

function addPort(into: PortRow, r: PortRow): void {
  if (r.roles) {
    const roles = into.roles ?? zeroRoleCounts();
    for (const role of TRAFFIC_ROLES) roles[role] += r.roles[role];
    into.roles = roles;
  }
  for (const f of ['deletes', 'earlyDrops', 'insertFailed', 'clashes'] as const) {
    if (r[f] !== undefined) into[f] = (into[f] ?? 0) + r[f];
  }
  // live entries are a state: the later window's figure
  if (r.entries !== undefined) into.entries = r.entries;
}

function ranked<T extends { inserts: number; drops: number }>(rows: Map<string, T>, top: number): T[] {
  const keyed = [...rows].map(([key, row]) => ({ key, row }));
  const before = (x: (typeof keyed)[number], y: (typeof keyed)[number]): boolean =>
    x.row.inserts !== y.row.inserts ? x.row.inserts > y.row.inserts : x.row.drops !== y.row.drops ? x.row.drops > y.row.drops : x.key < y.key;
  return topK(keyed, top > 0 ? top : keyed.length, before).map((k) => k.row);
}

/** Needs at least one window (a recording has one). `top` as in WindowOptions: rows kept, 0 for all. */
export function mergeWindows(windows: readonly SnapshotV1[], top: number): SnapshotV1 {
  const first = windows[0]!;
  const last = windows[windows.length - 1]!;
  const durationMs = windows.reduce((a, w) => a + w.durationMs, 0);
  const perSec = (n: number): number => round((n * 1000) / Math.max(1, durationMs));
  const sum = (f: (w: SnapshotV1) => number): number => windows.reduce((a, w) => a + f(w), 0);
  const bpf = windows.every((w) => w.totals.inserts !== null);

  const ports = sumRows(windows.flatMap((w) => w.ports), (p) => portKey(p), addPort);
  const tuples = sumRows<TupleRow>(windows.flatMap((w) => w.tuples), tupleKey, () => {});
  const keptPorts = ranked(ports, top);
  const keptTuples = ranked(tuples, top);

  const nsSums = new Map<number, Pick<NamespaceRow, 'drops' | 'earlyDrops' | 'insertFailed'> & { inserts: number; stats: CtStats | undefined }>();
  for (const w of windows) {
    for (const n of w.namespaces) {
      const s = nsSums.get(n.inode) ?? { inserts: 0, drops: 0, earlyDrops: 0, insertFailed: 0, stats: n.stats ? { ...ZERO_STATS } : undefined };
      s.inserts += n.inserts ?? 0;
      s.drops += n.drops;
      s.earlyDrops += n.earlyDrops;
      s.insertFailed += n.insertFailed;
      // statistics only where every window of the namespace carries them (the field is optional in files)
      if (s.stats && n.stats) for (const k of Object.keys(s.stats) as (keyof CtStats)[]) s.stats[k] += n.stats[k];
      else s.stats = undefined;
      nsSums.set(n.inode, s);
    }
  }
  const namespaces = last.namespaces.map((n) => {
    const { stats, ...s } = nsSums.get(n.inode)!;
    const { stats: _lastStats, ...row } = n;
    return { ...row, inserts: bpf ? s.inserts : null, drops: s.drops, earlyDrops: s.earlyDrops, insertFailed: s.insertFailed, ...(stats ? { stats } : {}) };
  });

  const totals: SnapshotV1['totals'] = {
    inserts: bpf ? sum((w) => w.totals.inserts ?? 0) : null,
    drops: sum((w) => w.totals.drops),
    dropsAttributed: windows.every((w) => w.totals.dropsAttributed !== null) ? sum((w) => w.totals.dropsAttributed ?? 0) : null,
    earlyDrops: sum((w) => w.totals.earlyDrops),
    insertFailed: sum((w) => w.totals.insertFailed),
    clashResolve: sum((w) => w.totals.clashResolve),
    searchRestart: sum((w) => w.totals.searchRestart),
    chainTooLong: sum((w) => w.totals.chainTooLong),
    invalid: sum((w) => w.totals.invalid),
  };
  const census = [...windows].reverse().find((w) => w.census !== undefined)?.census;
  return {
    ...last,
    startedAt: first.startedAt,
    durationMs,
    rates: {
      insertsPerSec: totals.inserts === null ? null : perSec(totals.inserts),
      dropsPerSec: perSec(totals.drops),
      earlyDropsPerSec: perSec(totals.earlyDrops),
      insertFailedPerSec: perSec(totals.insertFailed),
      clashResolvePerSec: perSec(totals.clashResolve),
      searchRestartPerSec: perSec(totals.searchRestart),
      chainTooLongPerSec: perSec(totals.chainTooLong),
      invalidPerSec: perSec(totals.invalid),
    },
    totals,
    ports: keptPorts,
    tuples: keptTuples,
    namespaces,
    overflow: {
      ...last.overflow,
      portsOmitted: sum((w) => w.overflow.portsOmitted) + ports.size - keptPorts.length,
      tuplesOmitted: sum((w) => w.overflow.tuplesOmitted) + tuples.size - keptTuples.length,
    },
    ...(census ? { census } : {}),
  };
}
