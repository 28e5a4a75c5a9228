/**
 * What the screen shows, updated once per refresh from one snapshot window:
 * the current and previous windows, and a short history of the four rates
 * for the sparklines. Pure: no I/O, no timers.
 */
import { portKey, type PortIdentity } from '../model/conntrack.js';
import { RollingRates } from '../model/rollingRates.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { fullestCount, netGrowthPerSec, timeToFullSec } from '../model/timeToFull.js';

/** 10 s and 60 s rates per port and per namespace (advanced in place by updateModel). */
export interface Rolling {
  ports: RollingRates<PortIdentity>;
  namespaces: RollingRates<{ inode: number; name: string }>;
}

export function portRowKey(p: Omit<PortIdentity, 'proto'>): string {
  return portKey({ netns: p.netns, family: p.family, proto: p.protoNum, port: p.port });
}

/** Sparkline history: enough for a 200-column terminal. */
const HISTORY_LEN = 240;

export interface RateHistory {
  insertsPerSec: (number | null)[];
  dropsPerSec: number[];
  earlyDropsPerSec: number[];
  insertFailedPerSec: number[];
}

export interface TuiModel {
  current: SnapshotV1 | undefined;
  previous: SnapshotV1 | undefined;
  history: RateHistory;
  /** Windows received since start. */
  windows: number;
  /** Net growth of the fullest namespace, entries/s; null until two windows exist. */
  netGrowthPerSec: number | null;
  /** Seconds to full at that growth; null = never. */
  timeToFullSec: number | null;
  rolling: Rolling;
}

export function emptyModel(): TuiModel {
  return {
    current: undefined,
    previous: undefined,
    history: { insertsPerSec: [], dropsPerSec: [], earlyDropsPerSec: [], insertFailedPerSec: [] },
    windows: 0,
    netGrowthPerSec: null,
    timeToFullSec: null,
    rolling: { ports: new RollingRates(), namespaces: new RollingRates() },
  };
}

function push<T>(list: T[], v: T): T[] {
  const out = list.length >= HISTORY_LEN ? list.slice(list.length - HISTORY_LEN + 1) : list.slice();
  out.push(v);
  return out;
}

export function updateModel(m: TuiModel, s: SnapshotV1): TuiModel {
  const growth = netGrowthPerSec(m.current, s);
  // the rolling sums are the one part kept in place: a copy per tick would cost what they save
  m.rolling.ports.push(
    s.durationMs,
    s.ports.map((p) => ({ key: portRowKey(p), inserts: p.inserts, drops: p.drops, meta: { netns: p.netns, family: p.family, proto: p.proto, protoNum: p.protoNum, port: p.port } })),
  );
  m.rolling.namespaces.push(
    s.durationMs,
    s.namespaces.map((n) => ({ key: String(n.inode), inserts: n.inserts ?? 0, drops: n.drops, meta: { inode: n.inode, name: n.name } })),
  );
  return {
    current: s,
    previous: m.current,
    history: {
      insertsPerSec: push(m.history.insertsPerSec, s.rates.insertsPerSec),
      dropsPerSec: push(m.history.dropsPerSec, s.rates.dropsPerSec),
      earlyDropsPerSec: push(m.history.earlyDropsPerSec, s.rates.earlyDropsPerSec),
      insertFailedPerSec: push(m.history.insertFailedPerSec, s.rates.insertFailedPerSec),
    },
    windows: m.windows + 1,
    netGrowthPerSec: growth,
    timeToFullSec: timeToFullSec(fullestCount(s).count, s.table.max, growth),
    rolling: m.rolling,
  };
}
