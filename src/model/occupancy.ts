/**
 * Occupancy: who holds the table. A census (the in-kernel hash walk, or a
 * ctnetlink dump) says how many entries each namespace, port and source
 * address holds at one moment; on the function tiers the kernel keeps a
 * per-port count of entries confirmed minus entries destroyed, so the
 * census's figures can be carried forward to now. Pure: no I/O.
 */
import { chainPressure, type BucketPressure, type OccupancyMethod, type WalkResult } from './census.js';
import type { CensusCounts } from './censusCounts.js';
import { family as familyOf, portKey, protoName, type Family, type PortIdentity } from './conntrack.js';
import type { PortEvents } from './sample.js';

/** Source addresses kept per namespace: the sources view shows a page of them. */
export const HELD_SOURCES_PER_NS = 256;

/** Default CPU budget of the background census: 2 % of one core. */
export const DEFAULT_BUDGET_SHARE = 0.02;

export interface HeldPort {
  family: Family;
  proto: number;
  /** original direction's destination port (0 for protocols without ports) */
  port: number;
  entries: number;
}

export interface HeldSource {
  family: Family;
  addr: string;
  entries: number;
}

/** One census, reduced to what the live views and reports need. */
export interface OccupancyCensus {
  method: OccupancyMethod;
  /** why the in-kernel count was not used */
  fallbackReason?: string;
  /** when the count finished */
  takenAt: string;
  namespaces: { inode: number; entries: number; ports: HeldPort[]; sources: HeldSource[] }[];
  /** measured chains, when the census walked the hash */
  walk: WalkResult | null;
  walkFallbackReason?: string;
  /** nf_conntrack_buckets and every namespace's entry count at the census (the hash is global) */
  buckets: number;
  hashEntries: number;
  /** this census's own cost: CPU time of the thread that took it, and wall time */
  cpuMs: number;
  wallMs: number;
}

/** What the background census has cost so far, against its budget. */
export interface CensusCost {
  censuses: number;
  lastCpuMs: number;
  lastWallMs: number;
  /** the wait before the next census: the census's CPU time over the budget */
  intervalMs: number;
  /** census CPU time over the time since the first census began (of one core) */
  cpuShare: number;
  budgetShare: number;
}

/** A census and, on the function tiers, the kernel's per-port live counts read right after it. */
export interface OccupancyInput {
  census: OccupancyCensus;
  cost?: CensusCost;
  /** per port key (netns/family/proto/port): port_events.entries when the census finished */
  entriesAtCensus?: Map<string, number>;
}

/** What a window source asks the background census for, each tick. */
export interface OccupancyFeed {
  input(): OccupancyInput | undefined;
  /** why the census failed, if the last attempt did */
  error(): string | undefined;
  close(): void;
}

export interface OccupancyPortRow extends PortIdentity {
  entries: number;
}

/** The `occupancy` section of a snapshot (ctop.snapshot/v1). */
export interface OccupancySection {
  /** how the census counted */
  method: OccupancyMethod;
  fallbackReason?: string;
  /** function tiers: the census carried forward by the kernel's per-port
   * counts (confirmed minus destroyed), so the ports are current; otherwise
   * every figure is as old as the census */
  live: boolean;
  takenAt: string;
  /** census age at the window's end */
  ageMs: number;
  entries: number;
  namespaces: { inode: number; entries: number }[];
  /** most entries first; `top` of them */
  ports: OccupancyPortRow[];
  portsOmitted: number;
  /** entries held by the ports left out */
  omittedEntries: number;
  /** original-direction source addresses holding the most entries, per namespace, as the census counted them */
  sources: { netns: number; family: Family; addr: string; entries: number }[];
  cost?: CensusCost;
}

/** A namespace's census summed over TCP states: entries per port, and its busiest sources. */
export function reduceCensus(c: CensusCounts): { entries: number; ports: HeldPort[]; sources: HeldSource[] } {
  const by = new Map<string, HeldPort>();
  for (const g of c.groups) {
    const family = familyOf(g.family);
    const k = `${family}/${g.l4proto}/${g.port}`;
    const p = by.get(k);
    if (p) p.entries += g.entries;
    else by.set(k, { family, proto: g.l4proto, port: g.port, entries: g.entries });
  }
  const ports = [...by.values()].sort((a, b) => b.entries - a.entries);
  const sources = c.srcs.slice(0, HELD_SOURCES_PER_NS).map((s) => ({ family: familyOf(s.family), addr: s.addr, entries: s.entries }));
  return { entries: c.entries, ports, sources };
}

/**
 * Entries held per port now: the census's count, plus (function tiers) what
 * the kernel's live count moved since the census. A port the census did not
 * see but the kernel counted since is included.
 */
export function heldByPort(input: OccupancyInput, events: PortEvents[] | undefined): Map<string, { row: HeldPort; netns: number; entries: number }> {
  const out = new Map<string, { row: HeldPort; netns: number; entries: number }>();
  for (const ns of input.census.namespaces) {
    for (const p of ns.ports) out.set(portKey({ netns: ns.inode, ...p }), { row: p, netns: ns.inode, entries: p.entries });
  }
  const at = input.entriesAtCensus;
  if (at && events) {
    for (const e of events) {
      const k = portKey(e);
      const moved = e.entries - (at.get(k) ?? 0);
      if (moved === 0) continue;
      const held = out.get(k);
      if (held) held.entries = Math.max(0, held.entries + moved);
      else if (moved > 0) out.set(k, { row: { family: e.family, proto: e.proto, port: e.port, entries: 0 }, netns: e.netns, entries: moved });
    }
  }
  return out;
}

/** The snapshot's occupancy section; `top` 0 keeps every port. */
export function occupancySection(
  input: OccupancyInput,
  held: Map<string, { row: HeldPort; netns: number; entries: number }>,
  windowEnd: string,
  top: number,
): OccupancySection {
  const c = input.census;
  const rows: OccupancyPortRow[] = [];
  for (const h of held.values()) {
    if (h.entries > 0) rows.push({ netns: h.netns, family: h.row.family, proto: protoName(h.row.proto), protoNum: h.row.proto, port: h.row.port, entries: h.entries });
  }
  rows.sort((a, b) => b.entries - a.entries || a.netns - b.netns || a.protoNum - b.protoNum || a.port - b.port);
  const kept = top > 0 ? rows.slice(0, top) : rows;
  const omitted = rows.slice(kept.length);
  const live = input.entriesAtCensus !== undefined;
  // live: namespace totals follow the ports (the census's figure plus what moved)
  const nsEntries = new Map(c.namespaces.map((n) => [n.inode, n.entries]));
  if (live) {
    const sum = new Map<number, number>();
    for (const h of held.values()) sum.set(h.netns, (sum.get(h.netns) ?? 0) + h.entries);
    for (const n of c.namespaces) {
      const censusPorts = n.ports.reduce((a, p) => a + p.entries, 0);
      // entries without a port key (protocols the kernel's counts skip) stay as the census saw them
      nsEntries.set(n.inode, (sum.get(n.inode) ?? 0) + (n.entries - censusPorts));
      sum.delete(n.inode);
    }
    for (const [inode, n] of sum) nsEntries.set(inode, n);
  }
  const namespaces = [...nsEntries].map(([inode, entries]) => ({ inode, entries })).sort((a, b) => b.entries - a.entries || a.inode - b.inode);
  return {
    method: c.method,
    ...(c.fallbackReason ? { fallbackReason: c.fallbackReason } : {}),
    live,
    takenAt: c.takenAt,
    ageMs: Math.max(0, Date.parse(windowEnd) - Date.parse(c.takenAt)) || 0,
    entries: namespaces.reduce((a, n) => a + n.entries, 0),
    namespaces,
    ports: kept,
    portsOmitted: omitted.length,
    omittedEntries: omitted.reduce((a, r) => a + r.entries, 0),
    sources: c.namespaces
      .flatMap((n) => n.sources.map((x) => ({ netns: n.inode, ...x })))
      .sort((a, b) => b.entries - a.entries)
      .slice(0, top > 0 ? top : undefined),
    ...(input.cost ? { cost: input.cost } : {}),
  };
}

/** The hash's chain lengths: measured when the census walked the hash, else the model; with the census's age. */
export function hashSection(input: OccupancyInput, windowEnd: string): BucketPressure & { takenAt: string; ageMs: number } {
  const c = input.census;
  return {
    ...chainPressure({ buckets: c.buckets, hashEntries: c.hashEntries, walk: c.walk, walkFallbackReason: c.walkFallbackReason }),
    takenAt: c.takenAt,
    ageMs: Math.max(0, Date.parse(windowEnd) - Date.parse(c.takenAt)) || 0,
  };
}

/**
 * When the next census may start (ms on the census thread's clock, which
 * starts with the thread). The budget holds over the thread's whole life and
 * counts the census about to run: the next one starts once the CPU time spent
 * since the thread started plus what that census is expected to cost (the
 * last one's CPU time, `nextCpuMs`) is within `budgetShare` of the time since
 * the thread started. So the first census runs at once (the screen has
 * occupancy within a second) and is paid back before the second starts; from
 * the second census on, the share of CPU measured since the start stays within
 * the budget even while a census runs (as long as a census costs no more than
 * the last). Never sooner than `minIntervalMs` nor later than `maxIntervalMs`
 * after this census began.
 */
export function nextCensusAt(o: { startedMs: number; spentCpuMs: number; nextCpuMs: number; budgetShare: number; minIntervalMs: number; maxIntervalMs: number }): number {
  const byBudget = (o.spentCpuMs + o.nextCpuMs) / o.budgetShare;
  return Math.min(o.startedMs + o.maxIntervalMs, Math.max(o.startedMs + o.minIntervalMs, byBudget));
}
