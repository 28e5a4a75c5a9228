/**
 * What changed between two recordings (a single snapshot counts as a
 * one-window recording): fill, rates, ports that appeared, grew, shrank or
 * vanished, census entry counts that moved.
 * Pure: works on summaries.
 *
 * Ports are matched on (netns inode, family, proto, port): inodes are stable
 * for the host namespace and for a namespace that lives through both
 * recordings, not across reboots or container restarts.
 */
import type { CensusReport } from './census.js';
import type { PortTotal, Summary } from './series.js';
import { round } from './numbers.js';

const DIFF_SCHEMA = 'ctop.diff/v1';

/** A port "grew" or "shrank" when its rate moved by more than this factor. */
const CHANGE_FACTOR = 1.1;

export interface Change<T> {
  a: T;
  b: T;
  /** b − a, null when either side is null. */
  delta: T extends number ? number : number | null;
}

export type PortStatus = 'appeared' | 'vanished' | 'grew' | 'shrank' | 'steady';

export interface PortSide {
  inserts: number;
  drops: number;
  insertsPerSec: number;
  dropsPerSec: number;
}

export interface PortChange {
  key: string;
  netns: number;
  family: string;
  proto: string;
  port: number;
  status: PortStatus;
  a: PortSide | null;
  b: PortSide | null;
}

export interface Side {
  name: string;
  host: string;
  windows: number;
  startedAt: string;
  endedAt: string;
  tier: string;
}

export interface SnapshotDiff {
  schema: typeof DIFF_SCHEMA;
  a: Side;
  b: Side;
  table: {
    max: Change<number>;
    buckets: Change<number>;
    /** Entries at the end of each recording, and the peak. */
    count: Change<number>;
    peakCount: Change<number>;
    fillRatio: Change<number>;
    peakFillRatio: Change<number>;
  };
  /** Per second over each recording. */
  rates: {
    insertsPerSec: Change<number | null>;
    dropsPerSec: Change<number>;
    earlyDropsPerSec: Change<number>;
    insertFailedPerSec: Change<number>;
  };
  secondsToFull: Change<number | null>;
  /** Every port of either side, appeared/vanished/grew/shrank first, busiest first within each. */
  ports: PortChange[];
  census: { inA: boolean; inB: boolean; changed: { key: string; a: number | null; b: number | null }[] };
}

function num(a: number, b: number): Change<number> {
  return { a: round(a, 4), b: round(b, 4), delta: round(b - a, 4) };
}

function nullable(a: number | null, b: number | null): Change<number | null> {
  return { a: a === null ? null : round(a, 4), b: b === null ? null : round(b, 4), delta: a === null || b === null ? null : round(b - a, 4) };
}

function side(name: string, s: Summary): Side {
  return { name, host: s.host, windows: s.windows, startedAt: s.startedAt, endedAt: s.endedAt, tier: s.tier };
}

function portSide(p: PortTotal): PortSide {
  return { inserts: p.inserts, drops: p.drops, insertsPerSec: round(p.insertsPerSec, 4), dropsPerSec: round(p.dropsPerSec, 4) };
}

export function portStatus(a: PortSide | null, b: PortSide | null): PortStatus {
  if (!a) return 'appeared';
  if (!b) return 'vanished';
  const ra = a.insertsPerSec + a.dropsPerSec;
  const rb = b.insertsPerSec + b.dropsPerSec;
  if (rb > ra * CHANGE_FACTOR) return 'grew';
  if (rb * CHANGE_FACTOR < ra) return 'shrank';
  return 'steady';
}

const STATUS_ORDER: Record<PortStatus, number> = { appeared: 0, grew: 1, shrank: 2, vanished: 3, steady: 4 };

/** The census entry counts of each side's last census that differ. */
const CENSUS_FIGURES = ['entries', 'assured', 'unreplied'] as const;

function diffCensus(a: CensusReport | undefined, b: CensusReport | undefined): SnapshotDiff['census'] {
  const changed: SnapshotDiff['census']['changed'] = [];
  if (a && b) {
    for (const key of CENSUS_FIGURES) if (a[key] !== b[key]) changed.push({ key, a: a[key], b: b[key] });
  }
  return { inA: a !== undefined, inB: b !== undefined, changed };
}

export function diffSummaries(nameA: string, a: Summary, nameB: string, b: Summary): SnapshotDiff {
  const pa = new Map(a.ports.map((p) => [p.key, p]));
  const pb = new Map(b.ports.map((p) => [p.key, p]));
  const ports: PortChange[] = [];
  for (const key of new Set([...pa.keys(), ...pb.keys()])) {
    const x = pa.get(key);
    const y = pb.get(key);
    const id = (x ?? y)!;
    const sa = x ? portSide(x) : null;
    const sb = y ? portSide(y) : null;
    ports.push({ key, netns: id.netns, family: id.family, proto: id.proto, port: id.port, status: portStatus(sa, sb), a: sa, b: sb });
  }
  const activity = (p: PortChange): number => Math.max(p.a?.insertsPerSec ?? 0, p.b?.insertsPerSec ?? 0) + Math.max(p.a?.dropsPerSec ?? 0, p.b?.dropsPerSec ?? 0);
  ports.sort((x, y) => STATUS_ORDER[x.status] - STATUS_ORDER[y.status] || activity(y) - activity(x) || (x.key < y.key ? -1 : 1));
  return {
    schema: DIFF_SCHEMA,
    a: side(nameA, a),
    b: side(nameB, b),
    table: {
      max: num(a.max, b.max),
      buckets: num(a.buckets, b.buckets),
      count: num(a.count.last, b.count.last),
      peakCount: num(a.count.peak, b.count.peak),
      fillRatio: num(a.fillRatio.last, b.fillRatio.last),
      peakFillRatio: num(a.fillRatio.peak, b.fillRatio.peak),
    },
    rates: {
      insertsPerSec: nullable(a.rates.insertsPerSec, b.rates.insertsPerSec),
      dropsPerSec: num(a.rates.dropsPerSec, b.rates.dropsPerSec),
      earlyDropsPerSec: num(a.rates.earlyDropsPerSec, b.rates.earlyDropsPerSec),
      insertFailedPerSec: num(a.rates.insertFailedPerSec, b.rates.insertFailedPerSec),
    },
    secondsToFull: nullable(a.projection.secondsToFull, b.projection.secondsToFull),
    ports,
    census: diffCensus(a.census, b.census),
  };
}
