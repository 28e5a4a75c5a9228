/**
 * NOTRACK candidates: the (family, protocol, port) keys that create the
 * largest share of new conntrack entries, and the nft rules that would exempt
 * them. A plain ranking, not advice: whether exempting a port is safe (NAT,
 * stateful rules that match it) is for `ctop advise` (src/advise/notrack.ts).
 * Pure: no I/O.
 */
import type { Family } from './conntrack.js';
import type { SnapshotV1 } from './snapshot.js';

export interface NotrackCandidate {
  family: Family;
  proto: string;
  protoNum: number;
  port: number;
  inserts: number;
  /** Share of all inserts in the window, 0..1. */
  share: number;
  /** Names of the namespaces this traffic was seen in. */
  namespaces: string[];
}

/** Protocols nft can match a port of (and whose `port` is a port, not an ICMP type). */
const PORT_PROTOS = new Set([6, 17, 33, 132, 136]);

export const NOTRACK_CAVEAT = 'suggestion; `ctop advise` checks safety';

export function notrackCandidates(s: SnapshotV1, limit = 5): NotrackCandidate[] {
  const total = s.totals.inserts ?? s.ports.reduce((a, p) => a + p.inserts, 0);
  if (!(total > 0)) return [];
  const nsName = new Map(s.namespaces.map((n) => [n.inode, n.name]));
  const byKey = new Map<string, NotrackCandidate & { ns: Set<string> }>();
  for (const p of s.ports) {
    if (!PORT_PROTOS.has(p.protoNum) || p.port === 0 || p.inserts <= 0) continue;
    const key = `${p.family}/${p.protoNum}/${p.port}`;
    let c = byKey.get(key);
    if (!c) {
      c = { family: p.family, proto: p.proto, protoNum: p.protoNum, port: p.port, inserts: 0, share: 0, namespaces: [], ns: new Set() };
      byKey.set(key, c);
    }
    c.inserts += p.inserts;
    c.ns.add(nsName.get(p.netns) ?? String(p.netns));
  }
  return [...byKey.values()]
    .sort((a, b) => b.inserts - a.inserts || a.family.localeCompare(b.family) || a.protoNum - b.protoNum || a.port - b.port)
    .slice(0, limit)
    .map(({ ns, ...c }) => ({ ...c, share: c.inserts / total, namespaces: [...ns].sort() }));
}

/**
 * The rules for one candidate, as this host would be the server of that port:
 * requests arrive with it as destination port (prerouting), replies leave
 * with it as source port (output). The raw table runs before conntrack.
 */
export function notrackRules(c: Pick<NotrackCandidate, 'family' | 'proto' | 'port'>): string[] {
  const nfproto = c.family === 'ipv6' ? 'ipv6' : 'ipv4';
  return [
    'nft add table inet raw',
    // Split with a shell continuation so each line fits an 80-column screen and still pastes as one command.
    'nft add chain inet raw prerouting \\',
    "  '{ type filter hook prerouting priority raw; }'",
    'nft add chain inet raw output \\',
    "  '{ type filter hook output priority raw; }'",
    `nft add rule inet raw prerouting meta nfproto ${nfproto} ${c.proto} dport ${c.port} notrack`,
    `nft add rule inet raw output meta nfproto ${nfproto} ${c.proto} sport ${c.port} notrack`,
  ];
}
