/**
 * The `/` filter: whitespace-separated terms that must all match.
 *
 *   53, port:53        a port (ports, tuples: either port of the tuple)
 *   tcp, udp, icmp, …  a protocol
 *   ipv4, ipv6         an address family
 *   198.18.0.1, 2001:2::, addr:10.0.   an address, or the start of one
 *   ns:web, ns:4026531840, web         a namespace, by name (part of it) or inode
 *   pod:web, pod:shop/                 a pod's namespace, by "namespace/name" (part of it)
 *
 * A term about something a view does not show (a port, in the namespaces
 * view) is ignored there rather than emptying the table. Pure: no I/O.
 */
import type { Family } from '../model/conntrack.js';

export type FilterTerm =
  | { kind: 'port'; port: number }
  | { kind: 'proto'; proto: string }
  | { kind: 'family'; family: Family }
  | { kind: 'addr'; prefix: string }
  | { kind: 'ns'; text: string }
  | { kind: 'pod'; text: string };

export interface Filter {
  text: string;
  terms: FilterTerm[];
}

/** What a row offers to the filter; absent fields make their terms not apply. */
export interface Matchable {
  family?: Family;
  proto?: string;
  ports?: number[];
  addrs?: string[];
  nsInode: number;
  nsName: string;
}

const PROTOS = new Set(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'dccp', 'udplite', 'gre']);

export const EMPTY_FILTER: Filter = { text: '', terms: [] };

/** Parses filter text; throws an Error with a short message for a term it cannot read. */
export function parseFilter(text: string): Filter {
  const terms: FilterTerm[] = [];
  for (const raw of text.trim().split(/\s+/).filter((w) => w.length > 0)) {
    const w = raw.toLowerCase();
    const colon = /^(port|ns|netns|pod|addr|src|dst|proto):(.+)$/.exec(w);
    if (colon) {
      const [, k, v] = colon as unknown as [string, string, string];
      if (k === 'port') terms.push(portTerm(v));
      else if (k === 'proto') terms.push({ kind: 'proto', proto: v });
      else if (k === 'ns' || k === 'netns') terms.push({ kind: 'ns', text: v });
      else if (k === 'pod') terms.push({ kind: 'pod', text: v });
      else terms.push({ kind: 'addr', prefix: v });
    } else if (/^\d+$/.test(w)) terms.push(portTerm(w));
    else if (PROTOS.has(w)) terms.push({ kind: 'proto', proto: w });
    else if (w === 'ipv4' || w === 'v4' || w === 'ip') terms.push({ kind: 'family', family: 'ipv4' });
    else if (w === 'ipv6' || w === 'v6' || w === 'ip6') terms.push({ kind: 'family', family: 'ipv6' });
    else if (/^[0-9a-f.:]+$/.test(w) && /[.:]/.test(w)) terms.push({ kind: 'addr', prefix: w });
    else terms.push({ kind: 'ns', text: w });
  }
  return { text: text.trim(), terms };
}

function portTerm(v: string): FilterTerm {
  const port = Number(v);
  if (!/^\d+$/.test(v) || port > 65535) throw new Error(`'${v}' is not a port (0-65535)`);
  return { kind: 'port', port };
}

function termMatches(t: FilterTerm, m: Matchable): boolean {
  switch (t.kind) {
    case 'port':
      return m.ports === undefined || m.ports.includes(t.port);
    case 'proto':
      return m.proto === undefined || m.proto === t.proto;
    case 'family':
      return m.family === undefined || m.family === t.family;
    case 'addr':
      return m.addrs === undefined || m.addrs.some((a) => a.toLowerCase().startsWith(t.prefix));
    case 'ns':
      return String(m.nsInode) === t.text || m.nsName.toLowerCase().includes(t.text);
    case 'pod':
      // a pod's namespace is named "pod <namespace>/<name>" (model/owner.ts ownerLabel)
      return m.nsName.toLowerCase().startsWith('pod ') && m.nsName.toLowerCase().slice(4).includes(t.text);
  }
}

export function matches(f: Filter, m: Matchable): boolean {
  for (const t of f.terms) if (!termMatches(t, m)) return false;
  return true;
}
