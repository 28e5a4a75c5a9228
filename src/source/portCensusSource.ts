/**
 * The census advise and validate use: the same machinery as `ctop census`
 * (in-kernel hash walk where the kernel permits, else one libnetfilter_conntrack
 * dump per namespace), reduced to entries per port and per TCP state.
 * Chains are not wanted here (model, no extra work) and no rate window.
 */
import type { OccupancyMethod } from '../model/census.js';
import { portCensus, type NativePortCensus } from '../model/portCensus.js';
import { takeCensus } from './censusSource.js';
import { hashWalker, locateForTests } from './hashWalk.js';

export interface PortCensusRun {
  occupancy: OccupancyMethod;
  /** why the in-kernel count was not used */
  fallbackReason?: string;
  occupancyMs: number;
  /** every namespace's census read entry timeouts */
  remainingRead: boolean;
  /** per namespace inode; a namespace with no entries may be absent (then it has none) */
  byNetns: Map<number, NativePortCensus>;
}

export interface PortCensusOptions {
  /** one namespace (name or path) instead of all */
  netns?: string;
  occupancy: 'auto' | 'ctnetlink';
}

export async function readPortCensus(o: PortCensusOptions): Promise<PortCensusRun> {
  const input = await takeCensus({
    netns: o.netns,
    top: 0,
    // addresses are not used here; the smallest table the counters accept
    maxAddrs: 2,
    chains: 'model',
    occupancy: o.occupancy,
    rateWindowMs: 0,
    walker: (w) => hashWalker({ ...w, locate: locateForTests() }),
  });
  const byNetns = new Map(input.namespaces.map((n) => [n.inode, portCensus(n.census, input.occupancy)]));
  return {
    occupancy: input.occupancy,
    ...(input.occupancyFallbackReason ? { fallbackReason: input.occupancyFallbackReason } : {}),
    occupancyMs: Math.round(input.occupancyMs * 10) / 10,
    remainingRead: [...byNetns.values()].every((c) => c.remainingHistogramByState !== null),
    byNetns,
  };
}

/** A namespace the census did not list has no entries. */
export function censusOf(run: PortCensusRun, inode: number): NativePortCensus {
  return run.byNetns.get(inode) ?? portCensus({ entries: 0, assured: 0, unreplied: 0, parseErrors: 0, groupOverflow: 0, groups: [], srcs: [], dsts: [], distinctSrcs: 0, distinctDsts: 0, srcOverflow: 0, dstOverflow: 0, tcpRemaining: [] }, run.occupancy);
}
