/**
 * A recording seen as time series: points for charts and CSV, per-port
 * totals, and a summary that diff and report share. Pure: no I/O.
 *
 * Each window lists only its top ports (`--top` when it was recorded), so a
 * port's total over the recording counts the windows where it made the list:
 * a lower bound for quiet ports, exact for the busy ones.
 */
import { portKey } from './conntrack.js';
import type { CensusReport } from './census.js';
import type { PortRow, SnapshotV1 } from './snapshot.js';
import { projectTimeToFull, type Projection } from './projection.js';

export interface SeriesPoint {
  /** Window end, ms since the epoch. */
  endMs: number;
  startedAt: string;
  durationMs: number;
  /** Entries summed over namespaces. */
  count: number;
  /** Entries in the fullest namespace (the one the limit bites first). */
  fullestCount: number;
  max: number;
  buckets: number;
  fillRatio: number;
  insertsPerSec: number | null;
  dropsPerSec: number;
  earlyDropsPerSec: number;
  insertFailedPerSec: number;
  inserts: number | null;
  drops: number;
}

export function points(snaps: readonly SnapshotV1[]): SeriesPoint[] {
  return snaps.map((s) => {
    const start = Date.parse(s.startedAt);
    const fullest = s.namespaces.reduce((m, n) => Math.max(m, n.count), 0);
    return {
      endMs: start + s.durationMs,
      startedAt: s.startedAt,
      durationMs: s.durationMs,
      count: s.table.count,
      // Older files may list no namespaces: fall back to fill × max.
      fullestCount: s.namespaces.length > 0 ? fullest : Math.round(s.table.fillRatio * s.table.max),
      max: s.table.max,
      buckets: s.table.buckets,
      fillRatio: s.table.fillRatio,
      insertsPerSec: s.rates.insertsPerSec,
      dropsPerSec: s.rates.dropsPerSec,
      earlyDropsPerSec: s.rates.earlyDropsPerSec,
      insertFailedPerSec: s.rates.insertFailedPerSec,
      inserts: s.totals.inserts,
      drops: s.totals.drops,
    };
  });
}

export interface PortTotal {
  key: string;
  netns: number;
  family: PortRow['family'];
  proto: string;
  port: number;
  inserts: number;
  drops: number;
  /** Over the whole recording's duration. */
  insertsPerSec: number;
  dropsPerSec: number;
  /** Windows where the port made the list. */
  windows: number;
}

/** "udp/53 (ipv4, netns 4026531840)": how views name a port row. */
export function portLabel(p: Pick<PortRow, 'netns' | 'family' | 'proto' | 'port'>, netnsName?: string): string {
  return `${p.proto}/${p.port} ${p.family} ${netnsName ?? `netns ${p.netns}`}`;
}

function totalSeconds(snaps: readonly SnapshotV1[]): number {
  return snaps.reduce((s, x) => s + x.durationMs, 0) / 1000;
}

/** Busiest first (inserts, then drops, then key, so output is stable). */
export function portTotals(snaps: readonly SnapshotV1[]): PortTotal[] {
  const secs = totalSeconds(snaps);
  const byKey = new Map<string, PortTotal>();
  for (const s of snaps) {
    for (const p of s.ports) {
      const key = portKey(p);
      let t = byKey.get(key);
      if (!t) {
        t = { key, netns: p.netns, family: p.family, proto: p.proto, port: p.port, inserts: 0, drops: 0, insertsPerSec: 0, dropsPerSec: 0, windows: 0 };
        byKey.set(key, t);
      }
      t.inserts += p.inserts;
      t.drops += p.drops;
      t.windows += 1;
    }
  }
  const out = [...byKey.values()];
  for (const t of out) {
    t.insertsPerSec = secs > 0 ? t.inserts / secs : 0;
    t.dropsPerSec = secs > 0 ? t.drops / secs : 0;
  }
  return out.sort((a, b) => b.inserts - a.inserts || b.drops - a.drops || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Inserts per second of each of the given ports in every window (0 where it did not make the list). */
export function portRateSeries(snaps: readonly SnapshotV1[], keys: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>(keys.map((k) => [k, new Array<number>(snaps.length).fill(0)]));
  snaps.forEach((s, i) => {
    for (const p of s.ports) {
      const row = out.get(portKey(p));
      if (row) row[i] = (p.inserts * 1000) / s.durationMs;
    }
  });
  return out;
}

/** inode → name, from every window (the latest name wins). */
export function netnsNames(snaps: readonly SnapshotV1[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const s of snaps) for (const n of s.namespaces) m.set(n.inode, n.name);
  return m;
}

export interface Summary {
  windows: number;
  host: string;
  kernel: string;
  tier: string;
  startedAt: string;
  endedAt: string;
  spanMs: number;
  max: number;
  buckets: number;
  count: { last: number; peak: number };
  fullestCount: { last: number; peak: number };
  fillRatio: { last: number; peak: number };
  /** Per second over the whole recording (total ÷ recorded time). */
  rates: { insertsPerSec: number | null; dropsPerSec: number; earlyDropsPerSec: number; insertFailedPerSec: number };
  totals: { inserts: number | null; drops: number; earlyDrops: number; insertFailed: number };
  ports: PortTotal[];
  projection: Projection;
  /** The last census in the recording (`ctop record --census`, `snapshot --census`), if any. */
  census?: CensusReport;
}

/** Largest value; a loop, since spreading a long recording into Math.max overflows the stack. */
export function peak<T>(xs: readonly T[], f: (x: T) => number): number {
  let m = 0;
  for (const x of xs) m = Math.max(m, f(x));
  return m;
}

/** Needs at least one window (callers refuse empty recordings first). */
export function summarize(snaps: readonly SnapshotV1[]): Summary {
  const pts = points(snaps);
  const first = snaps[0]!;
  const last = snaps[snaps.length - 1]!;
  const lastPt = pts[pts.length - 1]!;
  const secs = totalSeconds(snaps);
  const per = (n: number): number => (secs > 0 ? n / secs : 0);
  const sum = (f: (s: SnapshotV1) => number): number => snaps.reduce((a, s) => a + f(s), 0);
  const bpf = snaps.every((s) => s.totals.inserts !== null);
  const inserts = bpf ? sum((s) => s.totals.inserts ?? 0) : null;
  const drops = sum((s) => s.totals.drops);
  const earlyDrops = sum((s) => s.totals.earlyDrops ?? 0);
  const insertFailed = sum((s) => s.totals.insertFailed ?? 0);
  const startMs = Date.parse(first.startedAt);
  const census = [...snaps].reverse().find((s) => s.census !== undefined)?.census;
  return {
    windows: snaps.length,
    host: first.host,
    kernel: first.kernel,
    tier: last.probe.tier,
    startedAt: first.startedAt,
    endedAt: new Date(lastPt.endMs).toISOString(),
    spanMs: lastPt.endMs - startMs,
    max: last.table.max,
    buckets: last.table.buckets,
    count: { last: lastPt.count, peak: peak(pts, (p) => p.count) },
    fullestCount: { last: lastPt.fullestCount, peak: peak(pts, (p) => p.fullestCount) },
    fillRatio: { last: lastPt.fillRatio, peak: peak(pts, (p) => p.fillRatio) },
    rates: {
      insertsPerSec: inserts === null ? null : per(inserts),
      dropsPerSec: per(drops),
      earlyDropsPerSec: per(earlyDrops),
      insertFailedPerSec: per(insertFailed),
    },
    totals: { inserts, drops, earlyDrops, insertFailed },
    ports: portTotals(snaps),
    projection: projectTimeToFull(
      pts.map((p) => p.endMs),
      pts.map((p) => p.fullestCount),
      last.table.max,
    ),
    ...(census !== undefined ? { census } : {}),
  };
}
