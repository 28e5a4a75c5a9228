/**
 * The top-talkers table: one snapshot seen as ports, 5-tuples, source
 * addresses or network namespaces. Filtering and ranking work on the
 * snapshot's own rows and only the rows that can be shown are turned into
 * table rows, so 64,000 tuples cost a pass and a bounded heap, not a full
 * sort and 64,000 formatted strings. Pure: no I/O.
 */
import { portIsIcmpType, type Family } from '../model/conntrack.js';
import type { NamespaceRow, PortRow, SnapshotV1, TupleRow } from '../model/snapshot.js';
import { matches, type Filter, type Matchable } from './filter.js';
import { topK } from './topK.js';

export type ViewId = 'ports' | 'tuples' | 'sources' | 'namespaces';
export type SortKey = 'inserts' | 'drops' | 'occupancy' | 'name';

export const VIEWS: readonly { id: ViewId; title: string }[] = [
  { id: 'ports', title: 'Ports' },
  { id: 'tuples', title: '5-tuples' },
  { id: 'sources', title: 'Sources' },
  { id: 'namespaces', title: 'Namespaces' },
];

export const SORT_LABEL: Record<SortKey, string> = { inserts: 'inserts/s', drops: 'drops/s', occupancy: 'occupancy', name: 'name' };

export interface TalkerRow {
  /** Stable identity, so the selection can follow a row between refreshes. */
  id: string;
  label: string;
  nsName: string;
  insertsPerSec: number | null;
  dropsPerSec: number;
  /** Share of all inserts in the window, 0..1; null when inserts are not counted (stats tier). */
  share: number | null;
  /** Entries in the table (namespaces only; null elsewhere). */
  entries: number | null;
  /** Entries / nf_conntrack_max; null where ctop does not know it. */
  occupancy: number | null;
  /** Label/value pairs for the details screen (Enter); computed only when asked for. */
  details: () => [string, string][];
}

/** A source address, summed over its tuples. */
interface SourceAgg {
  netns: number;
  family: Family;
  src: string;
  inserts: number;
  drops: number;
  tuples: number;
}

interface Adapter<T> {
  items(s: SnapshotV1): T[];
  inserts(t: T): number;
  drops(t: T): number;
  occupancy?(t: T, s: SnapshotV1): number;
  name(t: T): string;
  match(t: T, nsName: (inode: number) => string): Matchable;
  row(t: T, s: SnapshotV1, ctx: RowContext): TalkerRow;
}

interface RowContext {
  nsName(inode: number): string;
  perSec(n: number): number;
  share(n: number): number | null;
}

function portText(proto: number, port: number): string {
  return portIsIcmpType(proto) ? `type ${port}` : String(port);
}

function hostPort(addr: string, port: number, family: Family): string {
  return family === 'ipv6' ? `[${addr}]:${port}` : `${addr}:${port}`;
}

const ports: Adapter<PortRow> = {
  items: (s) => s.ports,
  inserts: (p) => p.inserts,
  drops: (p) => p.drops,
  name: (p) => `${p.proto}/${String(p.port).padStart(5, '0')}`,
  match: (p, ns) => ({ family: p.family, proto: p.proto, ports: [p.port], nsInode: p.netns, nsName: ns(p.netns) }),
  row: (p, _s, c) => ({
    id: `p/${p.netns}/${p.family}/${p.protoNum}/${p.port}`,
    label: `${p.proto} ${portText(p.protoNum, p.port)}${p.family === 'ipv6' ? ' (v6)' : ''}`,
    nsName: c.nsName(p.netns),
    insertsPerSec: c.perSec(p.inserts),
    dropsPerSec: c.perSec(p.drops),
    share: c.share(p.inserts),
    entries: null,
    occupancy: null,
    details: () => [
      ['protocol', `${p.proto} (${p.protoNum}), ${p.family}`],
      [portIsIcmpType(p.protoNum) ? 'ICMP type' : 'port (original destination)', String(p.port)],
      ['namespace', `${c.nsName(p.netns)} (inode ${p.netns})`],
      ['inserts in window', String(p.inserts)],
      ['drops in window', String(p.drops)],
    ],
  }),
};

const tuples: Adapter<TupleRow> = {
  items: (s) => s.tuples,
  inserts: (t) => t.inserts,
  drops: (t) => t.drops,
  name: (t) => `${t.proto} ${t.src} ${t.dst}`,
  match: (t, ns) => ({ family: t.family, proto: t.proto, ports: [t.sport, t.dport], addrs: [t.src, t.dst], nsInode: t.netns, nsName: ns(t.netns) }),
  row: (t, _s, c) => ({
    id: `t/${t.netns}/${t.protoNum}/${t.src}/${t.sport}/${t.dst}/${t.dport}`,
    label: `${t.proto} ${hostPort(t.src, t.sport, t.family)} → ${hostPort(t.dst, t.dport, t.family)}`,
    nsName: c.nsName(t.netns),
    insertsPerSec: c.perSec(t.inserts),
    dropsPerSec: c.perSec(t.drops),
    share: c.share(t.inserts),
    entries: null,
    occupancy: null,
    details: () => [
      ['protocol', `${t.proto} (${t.protoNum}), ${t.family}`],
      ['source', hostPort(t.src, t.sport, t.family)],
      ['destination', hostPort(t.dst, t.dport, t.family)],
      ['namespace', `${c.nsName(t.netns)} (inode ${t.netns})`],
      ['inserts in window', String(t.inserts)],
      ['drops in window (refused)', String(t.drops)],
    ],
  }),
};

/** Aggregates are cached per snapshot: they are a pass over every tuple. */
const sourceCache = new WeakMap<SnapshotV1, SourceAgg[]>();

function sourceAggs(s: SnapshotV1): SourceAgg[] {
  let out = sourceCache.get(s);
  if (out) return out;
  // One map per namespace keyed by the address string: no key strings to build per tuple.
  const byNs = new Map<number, Map<string, SourceAgg>>();
  out = [];
  for (const t of s.tuples) {
    let by = byNs.get(t.netns);
    if (!by) byNs.set(t.netns, (by = new Map()));
    let a = by.get(t.src);
    if (!a) {
      a = { netns: t.netns, family: t.family, src: t.src, inserts: 0, drops: 0, tuples: 0 };
      by.set(t.src, a);
      out.push(a);
    }
    a.inserts += t.inserts;
    a.drops += t.drops;
    a.tuples += 1;
  }
  sourceCache.set(s, out);
  return out;
}

/** A source's busiest destinations: a pass over the tuples, done only for the details screen. */
function busiestDestinations(s: SnapshotV1, a: SourceAgg, n: number): [string, number][] {
  const by = new Map<string, number>();
  for (const t of s.tuples) {
    if (t.netns !== a.netns || t.src !== a.src) continue;
    const k = `${t.proto}/${t.dport}`;
    by.set(k, (by.get(k) ?? 0) + t.inserts + t.drops);
  }
  return [...by.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).slice(0, n);
}

const sources: Adapter<SourceAgg> = {
  items: sourceAggs,
  inserts: (a) => a.inserts,
  drops: (a) => a.drops,
  name: (a) => a.src,
  match: (a, ns) => ({ family: a.family, addrs: [a.src], nsInode: a.netns, nsName: ns(a.netns) }),
  row: (a, s, c) => {
    return {
      id: `s/${a.netns}/${a.src}`,
      label: a.src,
      nsName: c.nsName(a.netns),
      insertsPerSec: c.perSec(a.inserts),
      dropsPerSec: c.perSec(a.drops),
      share: c.share(a.inserts),
      entries: null,
    occupancy: null,
      details: () => [
        ['source address', `${a.src} (${a.family})`],
        ['namespace', `${c.nsName(a.netns)} (inode ${a.netns})`],
        ['tuples in window', String(a.tuples)],
        ['inserts in window', String(a.inserts)],
        ['drops in window', String(a.drops)],
        ['busiest destinations', busiestDestinations(s, a, 5).map(([k, n]) => `${k} (${n})`).join(', ')],
        ['note', 'from the per-tuple map: tuples it had no room for are not here'],
      ],
    };
  },
};

const namespaces: Adapter<NamespaceRow> = {
  items: (s) => s.namespaces,
  inserts: (n) => n.inserts ?? 0,
  drops: (n) => n.drops,
  occupancy: (n, s) => (s.table.max > 0 ? n.count / s.table.max : 0),
  name: (n) => n.name,
  match: (n) => ({ nsInode: n.inode, nsName: n.name }),
  row: (n, s, c) => ({
    id: `n/${n.inode}`,
    label: n.name,
    nsName: n.name,
    insertsPerSec: n.inserts === null ? null : c.perSec(n.inserts),
    dropsPerSec: c.perSec(n.drops),
    share: n.inserts === null ? null : c.share(n.inserts),
    entries: n.count,
    occupancy: s.table.max > 0 ? n.count / s.table.max : null,
    details: () => [
      ['namespace', `${n.name} (inode ${n.inode})`],
      ['entries', `${n.count} of ${s.table.max} (${((100 * n.count) / Math.max(1, s.table.max)).toFixed(1)}%)`],
      ['inserts in window', n.inserts === null ? 'not counted (stats tier)' : String(n.inserts)],
      ['drops in window', String(n.drops)],
      ['early drops in window', String(n.earlyDrops)],
      ['insert_failed in window', String(n.insertFailed)],
    ],
  }),
};

const ADAPTERS: Record<ViewId, Adapter<never>> = {
  ports: ports as Adapter<never>,
  tuples: tuples as Adapter<never>,
  sources: sources as Adapter<never>,
  namespaces: namespaces as Adapter<never>,
};

/** The sort keys `s` cycles through in a view: occupancy only where it is known. */
export function sortKeysFor(view: ViewId): SortKey[] {
  return view === 'namespaces' ? ['inserts', 'drops', 'occupancy', 'name'] : ['inserts', 'drops', 'name'];
}

export interface Selection {
  rows: TalkerRow[];
  /** Rows that pass the filter (rows holds at most `limit` of them). */
  total: number;
}

/**
 * The first `limit` rows of a view, filtered and ranked. Ties keep the
 * snapshot's own order (busiest first, then a stable key), so the table does
 * not shuffle between refreshes.
 */
export function selectRows(s: SnapshotV1, view: ViewId, sort: SortKey, filter: Filter, limit: number): Selection {
  const a = ADAPTERS[view] as unknown as Adapter<unknown>;
  const nsNames = new Map(s.namespaces.map((n) => [n.inode, n.name]));
  const nsName = (inode: number): string => nsNames.get(inode) ?? String(inode);
  const items = a.items(s);
  const idx: number[] = [];
  for (let i = 0; i < items.length; i++) {
    if (filter.terms.length === 0 || matches(filter, a.match(items[i], nsName))) idx.push(i);
  }
  const before = orderFn(a, s, sort, items);
  const chosen = topK(idx, limit, before);
  const durationSec = Math.max(0.001, s.durationMs / 1000);
  const totalInserts = s.totals.inserts;
  const ctx: RowContext = {
    nsName,
    perSec: (n) => n / durationSec,
    share: (n) => (totalInserts === null ? null : totalInserts > 0 ? n / totalInserts : 0),
  };
  return { rows: chosen.map((i) => a.row(items[i], s, ctx)), total: idx.length };
}

/** `before(x, y)`: should item x be listed above item y? Ties keep the snapshot's order (the index). */
function orderFn(a: Adapter<unknown>, s: SnapshotV1, sort: SortKey, items: unknown[]): (x: number, y: number) => boolean {
  if (sort === 'name') {
    return (x, y) => {
      const c = a.name(items[x]).localeCompare(a.name(items[y]));
      return c < 0 || (c === 0 && x < y);
    };
  }
  const occ = a.occupancy;
  // Descending by the key, then by the other rate, then snapshot order.
  const keys: ((t: unknown) => number)[] =
    sort === 'drops' ? [a.drops, a.inserts] : sort === 'occupancy' && occ ? [(t) => occ(t, s), a.inserts, a.drops] : [a.inserts, a.drops];
  return (x, y) => {
    for (const k of keys) {
      const d = k(items[y]) - k(items[x]);
      if (d !== 0) return d < 0;
    }
    return x < y;
  };
}
