/**
 * Kernel facts about conntrack that every layer names: protocol numbers,
 * address families, TCP states, the states whose entries linger, the ports of
 * the kernel's helpers, and how a port is keyed. Pure data and lookups.
 */

/** IANA protocol numbers ctop names; others print as their number. */
const PROTO_NAMES: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  33: 'dccp',
  47: 'gre',
  58: 'icmpv6',
  132: 'sctp',
  136: 'udplite',
};

export function protoName(n: number): string {
  return PROTO_NAMES[n] ?? String(n);
}

/** Protocols whose `port` field is an ICMP type rather than a port. */
export function portIsIcmpType(n: number): boolean {
  return n === 1 || n === 58;
}

/** Protocols whose entries carry ports (tcp, udp, dccp, sctp, udplite). */
export const PORTED_PROTOS: ReadonlySet<number> = new Set([6, 17, 33, 132, 136]);

/** The transport protocols NOTRACK rules and helpers are written for. */
export type L4 = 'tcp' | 'udp';

export type Family = 'ipv4' | 'ipv6';

const AF_INET = 2;

/** An address family number (AF_INET, AF_INET6) as ctop names it. */
export function family(af: number): Family {
  return af === AF_INET ? 'ipv4' : 'ipv6';
}

/** One string per (namespace, family, protocol, port), for joining rows across samples. */
export function portKey(p: { netns: number; family: string; proto: number | string; port: number }): string {
  return `${p.netns}/${p.family}/${p.proto}/${p.port}`;
}

/** enum tcp_conntrack, in the words `conntrack -L` prints. */
const TCP_STATES = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2',
];

export function tcpStateName(state: number | null): string | null {
  if (state === null) return null;
  return TCP_STATES[state] ?? `state ${state}`;
}

/** TCP states whose entries linger after a connection is done or idle
 * (named as in net.netfilter.nf_conntrack_tcp_timeout_STATE). */
export const LINGERING_STATES = ['established', 'time_wait', 'close_wait', 'fin_wait'] as const;
export type LingeringState = (typeof LINGERING_STATES)[number];

/** What the host offers conntrack (src/source/ctSettings.ts reads it). */
export interface HostFacts {
  memBytes: number;
  wordBits: 32 | 64;
  /** nf_conntrack slab object size; 0 when /proc/slabinfo does not say. */
  entryBytes: number;
  helpers: HelperPresence[];
  /** Netfilter pieces present, built in or loaded: what could hold conntrack or NAT in. */
  modules: { name: string; how: string }[];
}

/** Which port a row counts: namespace, family, protocol (name and number) and port (an ICMP type for ICMP). */
export interface PortIdentity {
  netns: number;
  family: Family;
  proto: string;
  protoNum: number;
  port: number;
}

/** A conntrack helper the kernel has (built in or as a module), with the ports it serves by default. */
export interface HelperPresence {
  name: string;
  /** 'built-in' or 'module' */
  how: string;
  ports: { proto: L4; port: number }[];
}

/**
 * Well-known ports of the kernel's helpers (their module defaults:
 * nf_conntrack_ftp ports=21, nf_conntrack_sip ports=5060, ...).
 */
export const HELPER_PORTS: Record<string, { proto: L4; port: number }[]> = {
  ftp: [{ proto: 'tcp', port: 21 }],
  sip: [
    { proto: 'udp', port: 5060 },
    { proto: 'tcp', port: 5060 },
  ],
  tftp: [{ proto: 'udp', port: 69 }],
  irc: [{ proto: 'tcp', port: 6667 }],
  h323: [
    { proto: 'tcp', port: 1720 },
    { proto: 'udp', port: 1719 },
  ],
  pptp: [{ proto: 'tcp', port: 1723 }],
  amanda: [{ proto: 'udp', port: 10080 }],
  sane: [{ proto: 'tcp', port: 6566 }],
  snmp: [{ proto: 'udp', port: 161 }],
  netbios_ns: [{ proto: 'udp', port: 137 }],
};
