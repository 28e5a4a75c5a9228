/**
 * What the screen shows, updated once per refresh from one snapshot window:
 * the current and previous windows, and a short history of the four rates
 * for the sparklines. Pure: no I/O, no timers.
 */
import type { SnapshotV1 } from '../model/snapshot.js';
import { fullestCount, netGrowthPerSec, timeToFullSec } from '../model/timeToFull.js';

/** Sparkline history: enough for a 200-column terminal. */
export const HISTORY_LEN = 240;

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
}

export function emptyModel(): TuiModel {
  return {
    current: undefined,
    previous: undefined,
    history: { insertsPerSec: [], dropsPerSec: [], earlyDropsPerSec: [], insertFailedPerSec: [] },
    windows: 0,
    netGrowthPerSec: null,
    timeToFullSec: null,
  };
}

function push<T>(list: T[], v: T): T[] {
  const out = list.length >= HISTORY_LEN ? list.slice(list.length - HISTORY_LEN + 1) : list.slice();
  out.push(v);
  return out;
}

export function updateModel(m: TuiModel, s: SnapshotV1): TuiModel {
  const growth = netGrowthPerSec(m.current, s);
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
  };
}
