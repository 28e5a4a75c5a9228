/** IANA protocol numbers ctop names; others print as their number. */
const NAMES: Record<number, string> = {
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
  return NAMES[n] ?? String(n);
}

/** Protocols whose `port` field is an ICMP type rather than a port. */
export function portIsIcmpType(n: number): boolean {
  return n === 1 || n === 58;
}
