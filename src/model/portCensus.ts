/**
 * What advise and validate need from a census (src/model/census.ts input):
 * entries per "proto/port" (original direction's destination port, both
 * families together) and TCP entries per lingering state. Pure: no I/O.
 */
import type { CensusCounts } from './censusCounts.js';
import type { OccupancyMethod } from './census.js';
import { LINGERING_STATES, PORTED_PROTOS, protoName, tcpStateName, type LingeringState } from './conntrack.js';
import { REMAIN_SLOTS } from './remaining.js';

/** Entries per (proto, port) from a table dump; the port is the original direction's destination port. */
export interface PortCensus {
  /** What produced it, as sourceLabel() names the census method. */
  source: string;
  total: number;
  /** key "udp/5000" */
  byPort: Record<string, number>;
}


export interface NativePortCensus extends PortCensus {
  occupancy: OccupancyMethod;
  /** TCP entries per lingering state (every state the census saw counts, absent ones are 0). */
  entriesByState: Record<LingeringState, number>;
  /** seconds left on TCP entries per lingering state, histogram, 4 slots per power of two (model/remaining.ts); null when the census could not read timeouts */
  remainingHistogramByState: Record<LingeringState, number[]> | null;
}

/** The census words for the lingering states (`conntrack -L` spelling, as tcpStateName gives it). */
const STATE_OF: Record<string, LingeringState> = {
  ESTABLISHED: 'established',
  TIME_WAIT: 'time_wait',
  CLOSE_WAIT: 'close_wait',
  FIN_WAIT: 'fin_wait',
};

function sourceLabel(occupancy: OccupancyMethod): string {
  return occupancy === 'bpf-hash-walk' ? 'bpf-hash-walk (in-kernel census)' : 'ctnetlink-dump (libnetfilter_conntrack census)';
}

export function portCensus(c: CensusCounts, occupancy: OccupancyMethod): NativePortCensus {
  const byPort: Record<string, number> = {};
  const entriesByState = Object.fromEntries(LINGERING_STATES.map((s) => [s, 0])) as Record<LingeringState, number>;
  for (const g of c.groups) {
    if (PORTED_PROTOS.has(g.l4proto)) {
      const key = `${protoName(g.l4proto)}/${g.port}`;
      byPort[key] = (byPort[key] ?? 0) + g.entries;
    }
    const st = g.l4proto === 6 ? STATE_OF[tcpStateName(g.state) ?? ''] : undefined;
    if (st) entriesByState[st] += g.entries;
  }
  let remainingHistogramByState: NativePortCensus['remainingHistogramByState'] = null;
  if (c.tcpRemaining) {
    const h = Object.fromEntries(LINGERING_STATES.map((s) => [s, new Array<number>(REMAIN_SLOTS).fill(0)])) as Record<LingeringState, number[]>;
    for (const r of c.tcpRemaining) {
      const st = STATE_OF[tcpStateName(r.state) ?? ''];
      if (st) r.slots.forEach((n, k) => (h[st][k]! += n));
    }
    remainingHistogramByState = h;
  }
  return { source: sourceLabel(occupancy), occupancy, total: c.entries, byPort, entriesByState, remainingHistogramByState };
}
