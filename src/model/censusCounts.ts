/**
 * One namespace's table as the native core counts it (entries grouped by
 * family, protocol, port and TCP state; top addresses; seconds left). The
 * census model (census.ts, portCensus.ts) reduces it. Numbers are as the
 * kernel has them: families as AF_*, protocols as IANA numbers.
 */

/** One (family, L4 protocol, original destination port, TCP state) group of a census. */
export interface CensusCountsGroup {
  family: number;
  l4proto: number;
  /** 0 for protocols without ports */
  port: number;
  /** enum tcp_conntrack for TCP; null for protocols conntrack keeps no state for */
  state: number | null;
  entries: number;
  assured: number;
  /** never saw a reply (no IPS_SEEN_REPLY) */
  unreplied: number;
}

export interface CensusCountsAddr {
  family: number;
  addr: string;
  entries: number;
}

/** What the native core counted in one namespace's table: from a ctnetlink
 * dump (native/core/census.c) or during the in-kernel hash walk (native/core/walk.c). */
export interface CensusCounts {
  entries: number;
  assured: number;
  unreplied: number;
  parseErrors: number;
  /** entries not counted: the in-kernel group table was full (walk only) */
  groupOverflow: number;
  /** TCP entries left out of tcpRemaining: its in-kernel table of
   * (namespace, state) pairs was full (walk only) */
  remainOverflow?: number;
  /** largest first */
  groups: CensusCountsGroup[];
  /** original-direction sources / destinations, largest first, at most `top` */
  srcs: CensusCountsAddr[];
  dsts: CensusCountsAddr[];
  distinctSrcs: number;
  distinctDsts: number;
  /** entries whose address found the bounded address table full */
  srcOverflow: number;
  dstOverflow: number;
  /** TCP entries' seconds left per state (enum tcp_conntrack), a histogram with 4 slots per power of two
   * (model/remaining.ts REMAIN_SLOTS); states without entries absent; null when
   * the census could not read timeouts (the walk without the kernel's HZ) */
  tcpRemaining?: { state: number; slots: number[] }[] | null;
}
