/**
 * What `ctop demo` will do to its throwaway namespace, decided before anything
 * starts so that it can be said up front: how many entries, how much kernel
 * memory, how long the fill takes. Pure: the caller reads the kernel's
 * figures and passes them in.
 *
 * The kernel checks each namespace's own entry count against the global
 * nf_conntrack_max, so a namespace can be filled to the limit without
 * touching any sysctl. What makes a full table refuse packets (rather than
 * evict) is the kind of entry: early_drop() may evict an entry that is not
 * ASSURED, so the bulk of the fill is assured UDP streams (replied, and still
 * active 2 s later), the held TCP connections are assured too, and the
 * flooded cache's new flows then find no room.
 */

export type DemoSize = 'full' | 'small';

/** The traffic mix: a cache flooded with new flows, a UDP service spread over
 * a port range, a TCP service holding connections. */
export const DEMO_PORTS = {
  cacheUdp: 11211,
  rangeUdpFirst: 20000,
  rangeUdpCount: 64,
  tcp: 443,
} as const;

/** The demo's addresses: the namespace routes the whole range to itself. */
export const DEMO_SERVER_ADDR = '198.18.0.2';

/** A fresh namespace starts with the kernel's default UDP timeout (30 s), not
 * the host's value: unreplied cache entries live that long. */
export const UDP_UNREPLIED_TIMEOUT_S = 30;

/** Flows per second the traffic tools reach on a small VM (2 cores): each
 * assured stream costs three packets, measured at ~200,000 packets/s. */
const STREAM_FLOWS_PER_SEC = 60_000;

/** Above this the full fill takes too long and too much memory for a demo. */
const FULL_MAX_ENTRIES = 1 << 20;

export interface DemoPlanInput {
  size: DemoSize;
  /** net.netfilter.nf_conntrack_max */
  max: number;
  /** nf_conntrack slab object size; 0 when unknown */
  entryBytes: number;
}

export interface DemoPlan {
  size: DemoSize;
  max: number;
  /** entries the namespace will hold at most */
  entries: number;
  /** entries x object size: kernel memory, freed when the namespace goes */
  memoryBytes: number;
  /** whether the object size was read (false: a typical 320 bytes assumed) */
  entryBytesKnown: boolean;
  /** assured UDP flows spread over the port range */
  streamFlows: number;
  /** TCP connections opened and held */
  heldTcp: number;
  /** new flows per second sent to the cache port */
  cacheFlowsPerSec: number;
  /** whether the table reaches its limit, so that conntrack drops packets */
  expectDrops: boolean;
  /** how long the fill of assured streams takes, roughly */
  fillSeconds: number;
}

/** Object size assumed when /proc/slabinfo is not readable (x86-64, 6.x). */
const TYPICAL_ENTRY_BYTES = 320;
const SMALL_ENTRIES = 32_768;

export function planDemo(i: DemoPlanInput): DemoPlan {
  const entryBytes = i.entryBytes > 0 ? i.entryBytes : TYPICAL_ENTRY_BYTES;
  if (i.size === 'full') {
    const heldTcp = Math.min(500, Math.floor(i.max / 100));
    // 5 % left to the cache's unassured flows: enough that early_drop sometimes
    // finds one to evict (counted as early drops), too few to always find one.
    const cacheRoom = Math.ceil(i.max * 0.05);
    const streamFlows = Math.max(0, i.max - heldTcp - cacheRoom);
    return {
      size: 'full',
      max: i.max,
      entries: i.max,
      memoryBytes: i.max * entryBytes,
      entryBytesKnown: i.entryBytes > 0,
      streamFlows,
      heldTcp,
      // the room fills in the first second; after that every new flow either
      // evicts an unassured one or is refused
      cacheFlowsPerSec: Math.max(1000, cacheRoom),
      expectDrops: true,
      fillSeconds: Math.ceil(streamFlows / STREAM_FLOWS_PER_SEC),
    };
  }
  // small: an eighth of the limit at most, never full, so no drops
  const entries = Math.min(SMALL_ENTRIES, Math.floor(i.max / 8));
  const heldTcp = Math.min(200, Math.floor(entries / 20));
  const streamFlows = Math.floor(entries / 2);
  const cacheFlowsPerSec = Math.max(1, Math.floor((entries - streamFlows - heldTcp) / UDP_UNREPLIED_TIMEOUT_S));
  return {
    size: 'small',
    max: i.max,
    entries,
    memoryBytes: entries * entryBytes,
    entryBytesKnown: i.entryBytes > 0,
    streamFlows,
    heldTcp,
    cacheFlowsPerSec,
    expectDrops: false,
    fillSeconds: Math.ceil(streamFlows / STREAM_FLOWS_PER_SEC),
  };
}

/** Why the full demo should not run here, or undefined when it may. */
export function fullDemoProblem(plan: DemoPlan, memAvailableBytes: number): string | undefined {
  if (plan.size !== 'full') return undefined;
  if (plan.max > FULL_MAX_ENTRIES) {
    return `nf_conntrack_max is ${plan.max.toLocaleString('en-US')}: filling that many entries takes about ${plan.fillSeconds} s and ${mib(plan.memoryBytes)}`;
  }
  // kernel memory for the entries, plus as much again for sockets and the tools
  if (memAvailableBytes > 0 && memAvailableBytes < 4 * plan.memoryBytes) {
    return `filling the table takes ${mib(plan.memoryBytes)} of kernel memory and only ${mib(memAvailableBytes)} is available`;
  }
  return undefined;
}

export function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 1 : 0)} MiB`;
}

/** The line said before anything starts. */
export function describePlan(p: DemoPlan): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const mem = `${mib(p.memoryBytes)}${p.entryBytesKnown ? '' : ' (object size assumed)'}`;
  return p.size === 'full'
    ? `fills its table to nf_conntrack_max = ${n(p.max)} entries (${mem} of kernel memory, about ${p.fillSeconds} s), ` +
        `then conntrack drops packets; all of it is freed at exit. --small: ${n(planDemo({ size: 'small', max: p.max, entryBytes: p.entryBytesKnown ? p.memoryBytes / p.max : 0 }).entries)} entries, no drops`
    : `holds at most ${n(p.entries)} entries (${mem}), an eighth of nf_conntrack_max = ${n(p.max)} at most: the table never fills, so no drops`;
}
