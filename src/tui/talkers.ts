/**
 * The top-talkers table: one snapshot seen as ports, 5-tuples, source
 * addresses or network namespaces. Filtering and ranking work on the
 * snapshot's own rows and only the rows that can be shown are turned into
 * table rows, so 64,000 tuples cost a pass and a bounded heap, not a full
 * sort and 64,000 formatted strings. Pure: no I/O.
 */
import { portIsIcmpType, type Family } from '../model/conntrack.js';
import type { NamespaceRow, PortRow, SnapshotV1, TupleRow } from '../model/snapshot.js';
import type { TupleColumns } from '../model/sample.js';
import { matches, type Filter, type Matchable } from './filter.js';
import { portRowKey, type Rolling } from './model.js';
import { topK } from '../model/topK.js';
import { describeCounts } from '../advise/roles.js';
import { rangeGroups, roleGroups, type PortGroup } from './portGroups.js';

export type ViewId = 'ports' | 'tuples' | 'sources' | 'namespaces' | 'pods' | 'ranges' | 'roles';
export type SortKey = 'inserts' | 'inserts10' | 'inserts60' | 'drops' | 'occupancy' | 'name';

export const VIEWS: readonly { id: ViewId; title: string }[] = [
  { id: 'ports', title: 'Ports' },
  { id: 'tuples', title: '5-tuples' },
  { id: 'sources', title: 'Sources' },
  { id: 'namespaces', title: 'Namespaces' },
  { id: 'pods', title: 'Pods' },
  { id: 'ranges', title: 'Ranges' },
  { id: 'roles', title: 'Roles' },
];

export const SORT_LABEL: Record<SortKey, string> = {
  inserts: 'inserts/s',
  inserts10: 'inserts/s over 10s',
  inserts60: 'inserts/s over 60s',
  drops: 'drops/s',
  occupancy: 'occupancy',
  name: 'name',
};

export interface TalkerRow {
  /** Stable identity, so the selection can follow a row between refreshes. */
  id: string;
  label: string;
  nsName: string;
  insertsPerSec: number | null;
  /** Inserts per second over the last 10 s and 60 s (SPANS_S); null in views that keep no spans */
  spanInsertsPerSec: number[] | null;
  dropsPerSec: number;
  /** Share of all inserts in the window, 0..1; null when inserts are not counted (stats tier). */
  share: number | null;
  /** Entries this row holds in the table (the occupancy); null where no census counted it. */
  entries: number | null;
  /** Entries / nf_conntrack_max; null where ctop does not know it. */
  occupancy: number | null;
  /** Ranges view: the roles its rules would cover ('' when it made no new entry in the window). */
  role?: string;
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
  /** entries it holds, from the census; 0 when the census did not list it */
  entries: number;
}

interface Adapter<T> {
  items(s: SnapshotV1, r: Rolling | undefined): ArrayLike<T> & Iterable<T>;
  /** inserts per second over each span (SPANS_S), where the view keeps them */
  spans?(t: T, r: Rolling): number[];
  inserts(t: T): number;
  drops(t: T): number;
  occupancy?(t: T, s: SnapshotV1): number;
  /** `before` over item indexes for a sort, where the view has a faster one than the generic keys */
  orderBy?(sort: SortKey): ((x: number, y: number) => boolean) | undefined;
  name(t: T): string;
  match(t: T, nsName: (inode: number) => string): Matchable;
  row(t: T, s: SnapshotV1, ctx: RowContext): Omit<TalkerRow, 'spanInsertsPerSec'>;
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

/** A port that moved within the last minute but not in this window: listed with zeros, so a burst stays on screen. */
const portCache = new WeakMap<SnapshotV1, PortRow[]>();

function portItems(s: SnapshotV1, r: Rolling | undefined): PortRow[] {
  if (!r) return s.ports;
  let out = portCache.get(s);
  if (out) return out;
  const listed = new Set(s.ports.map(portRowKey));
  out = s.ports.slice();
  for (const [k, id] of r.ports.active()) if (!listed.has(k)) out.push({ ...id, inserts: 0, drops: 0 });
  portCache.set(s, out);
  return out;
}

/** The columns every counted row has: its namespace, rates, share and the entries it holds. */
function countedColumns(
  x: { netns: number; inserts: number; drops: number; occupancy?: number | undefined },
  s: SnapshotV1,
  c: RowContext,
): Pick<TalkerRow, 'nsName' | 'insertsPerSec' | 'dropsPerSec' | 'share' | 'entries' | 'occupancy'> {
  return {
    nsName: c.nsName(x.netns),
    insertsPerSec: c.perSec(x.inserts),
    dropsPerSec: c.perSec(x.drops),
    share: c.share(x.inserts),
    entries: x.occupancy ?? null,
    occupancy: x.occupancy === undefined || s.table.max <= 0 ? null : x.occupancy / s.table.max,
  };
}

const ports: Adapter<PortRow> = {
  items: portItems,
  spans: (p, r) => r.ports.rates(portRowKey(p)).insertsPerSec,
  inserts: (p) => p.inserts,
  drops: (p) => p.drops,
  occupancy: (p) => p.occupancy ?? 0,
  name: (p) => `${p.proto}/${String(p.port).padStart(5, '0')}`,
  match: (p, ns) => ({ family: p.family, proto: p.proto, ports: [p.port], nsInode: p.netns, nsName: ns(p.netns) }),
  row: (p, s, c) => ({
    id: `p/${p.netns}/${p.family}/${p.protoNum}/${p.port}`,
    label: `${p.proto} ${portText(p.protoNum, p.port)}${p.family === 'ipv6' ? ' (v6)' : ''}`,
    ...countedColumns(p, s, c),
    details: () => [
      ['protocol', `${p.proto} (${p.protoNum}), ${p.family}`],
      [portIsIcmpType(p.protoNum) ? 'ICMP type' : 'port (original destination)', String(p.port)],
      ['namespace', `${c.nsName(p.netns)} (inode ${p.netns})`],
      ['inserts in window', String(p.inserts)],
      ['drops in window', String(p.drops)],
      ['entries held', p.occupancy === undefined ? 'not counted (no census)' : `${p.occupancy} (${occupancyAge(s)})`],
    ],
  }),
};

function tupleRow(t: TupleRow, c: RowContext): Omit<TalkerRow, 'spanInsertsPerSec'> {
  return {
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
  };
}

const tuples: Adapter<TupleRow> = {
  items: (s) => s.tuples,
  inserts: (t) => t.inserts,
  drops: (t) => t.drops,
  name: (t) => `${t.proto} ${t.src} ${t.dst}`,
  match: (t, ns) => ({ family: t.family, proto: t.proto, ports: [t.sport, t.dport], addrs: [t.src, t.dst], nsInode: t.netns, nsName: ns(t.netns) }),
  row: (t, _s, c) => tupleRow(t, c),
};

/** 0, 1, …, n-1, kept between refreshes: a view of record or item indexes costs no allocation per tick. */
let indexes = new Int32Array(0);

export function firstIndexes(n: number): Int32Array {
  if (indexes.length < n) {
    indexes = new Int32Array(Math.max(n, 2 * indexes.length));
    for (let i = 0; i < indexes.length; i++) indexes[i] = i;
  }
  return indexes.subarray(0, n);
}

/** The 5-tuples view over columns: items are record indexes; a row object is built only for a shown tuple. */
function columnTuples(cols: TupleColumns): Adapter<number> {
  return {
    items: () => firstIndexes(cols.length),
    inserts: (i) => cols.inserts(i),
    drops: (i) => cols.drops(i),
    // items are record indexes: compare the records' counts in place, one call site per key
    // (the generic keys cost about 3 ms a refresh at 64,000 tuples, this about a third)
    orderBy: (sort) =>
      sort === 'inserts'
        ? (x, y) => {
            const d = cols.inserts(y) - cols.inserts(x);
            if (d !== 0) return d < 0;
            const e = cols.drops(y) - cols.drops(x);
            return e !== 0 ? e < 0 : x < y;
          }
        : sort === 'drops'
          ? (x, y) => {
              const d = cols.drops(y) - cols.drops(x);
              if (d !== 0) return d < 0;
              const e = cols.inserts(y) - cols.inserts(x);
              return e !== 0 ? e < 0 : x < y;
            }
          : undefined,
    name: (i) => `${cols.proto(i)} ${cols.src(i)} ${cols.dst(i)}`,
    match: (i, ns) => ({ family: cols.family(i), proto: cols.proto(i), ports: [cols.sport(i), cols.dport(i)], addrs: [cols.src(i), cols.dst(i)], nsInode: cols.netns(i), nsName: ns(cols.netns(i)) }),
    row: (i, _s, c) => tupleRow(cols.row(i), c),
  };
}

/** Aggregates are cached per snapshot: they are a pass over every tuple. */
const sourceCache = new WeakMap<SnapshotV1, SourceAgg[]>();

/** The map `outer` keeps for one namespace, made when first asked for. */
function perNetns<K, V>(outer: Map<number, Map<K, V>>, netns: number): Map<K, V> {
  let inner = outer.get(netns);
  if (!inner) outer.set(netns, (inner = new Map()));
  return inner;
}

function sourceAggs(s: SnapshotV1): SourceAgg[] {
  let out = sourceCache.get(s);
  if (out) return out;
  // One map per namespace keyed by the address string: no key strings to build per tuple.
  const byNs = new Map<number, Map<string, SourceAgg>>();
  const list: SourceAgg[] = [];
  out = list;
  const named = (netns: number, family: Family, src: string): SourceAgg => {
    const by = perNetns(byNs, netns);
    let a = by.get(src);
    if (!a) {
      a = { netns, family, src, inserts: 0, drops: 0, tuples: 0, entries: 0 };
      by.set(src, a);
      list.push(a);
    }
    return a;
  };
  const add = (a: SourceAgg, inserts: number, drops: number): void => {
    a.inserts += inserts;
    a.drops += drops;
    a.tuples += 1;
  };
  const cols = s.tupleColumns;
  if (cols) {
    // grouped by the address's key; its text is made once per source, not per tuple
    const byKey = new Map<number, Map<number | string, SourceAgg>>();
    for (let i = 0; i < cols.length; i++) {
      const netns = cols.netns(i);
      const by = perNetns(byKey, netns);
      const k = cols.srcKey(i);
      let a = by.get(k);
      if (!a) by.set(k, (a = named(netns, cols.family(i), cols.src(i))));
      add(a, cols.inserts(i), cols.drops(i));
    }
  }
  for (const t of s.tuples) add(named(t.netns, t.family, t.src), t.inserts, t.drops);
  // Sources that hold entries are listed even with nothing new in the window.
  for (const h of s.occupancy?.sources ?? []) named(h.netns, h.family, h.addr).entries = h.entries;
  sourceCache.set(s, out);
  return out;
}

/** A source's busiest destinations: a pass over the tuples, done only for the details screen. */
function busiestDestinations(s: SnapshotV1, a: SourceAgg, n: number): [string, number][] {
  const by = new Map<string, number>();
  const add = (src: string, proto: string, dport: number, count: number): void => {
    if (src !== a.src) return;
    const k = `${proto}/${dport}`;
    by.set(k, (by.get(k) ?? 0) + count);
  };
  const cols = s.tupleColumns;
  if (cols) {
    for (let i = 0; i < cols.length; i++) if (cols.netns(i) === a.netns) add(cols.src(i), cols.proto(i), cols.dport(i), cols.inserts(i) + cols.drops(i));
  }
  for (const t of s.tuples) if (t.netns === a.netns) add(t.src, t.proto, t.dport, t.inserts + t.drops);
  return [...by.entries()].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).slice(0, n);
}

const sources: Adapter<SourceAgg> = {
  items: sourceAggs,
  inserts: (a) => a.inserts,
  drops: (a) => a.drops,
  occupancy: (a) => a.entries,
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
      entries: s.occupancy ? a.entries : null,
      occupancy: s.occupancy && s.table.max > 0 ? a.entries / s.table.max : null,
      details: () => [
        ['source address', `${a.src} (${a.family})`],
        ['namespace', `${c.nsName(a.netns)} (inode ${a.netns})`],
        ['tuples in window', String(a.tuples)],
        ['inserts in window', String(a.inserts)],
        ['drops in window', String(a.drops)],
        ['entries held', s.occupancy ? `${a.entries} (${occupancyAge(s)}; the census lists the ${s.occupancy.sources.length} largest sources)` : 'not counted (no census)'],
        ['busiest destinations', busiestDestinations(s, a, 5).map(([k, n]) => `${k} (${n})`).join(', ')],
        ['note', 'from the per-tuple map: tuples it had no room for are not here'],
      ],
    };
  },
};

const namespaces: Adapter<NamespaceRow> = {
  items: (s) => s.namespaces,
  spans: (n, r) => r.namespaces.rates(String(n.inode)).insertsPerSec,
  inserts: (n) => n.inserts ?? 0,
  drops: (n) => n.drops,
  occupancy: (n) => n.count,
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

/** The namespaces that Kubernetes pods own (model/owner.ts), named "namespace/pod". */
const pods: Adapter<NamespaceRow> = {
  ...namespaces,
  items: (s) => s.namespaces.filter((n) => n.owner?.kind === 'pod'),
  name: (n) => podName(n),
  row: (n, s, c) => {
    const r = namespaces.row(n, s, c);
    const o = n.owner!;
    return {
      ...r,
      id: `p/${n.inode}`,
      label: podName(n),
      details: () => [
        ['pod', podName(n)],
        ['uid', o.uid ?? '?'],
        ['containers', (o.containers ?? []).join(', ') || '?'],
        ...r.details(),
      ],
    };
  },
};

function podName(n: NamespaceRow): string {
  return `${n.owner?.namespace ?? '?'}/${n.owner?.name ?? n.name}`;
}

/** A group's ports in words: "60000-60099 (100 ports)", or the one port. */
function groupPorts(g: PortGroup): string {
  if (g.ports === 1) return portText(g.protoNum, g.port);
  return `${g.port}-${g.portEnd} (${g.ports} ports)`;
}

function familyOf(g: PortGroup): Family | undefined {
  return g.families.length === 1 ? g.families[0] : undefined;
}

function groupRow(g: PortGroup, label: string, id: string, s: SnapshotV1, c: RowContext): Omit<TalkerRow, 'spanInsertsPerSec'> {
  const busiest = [...g.members].sort((a, b) => b.inserts - a.inserts || (b.occupancy ?? 0) - (a.occupancy ?? 0) || a.port - b.port).slice(0, 5);
  return {
    id,
    label,
    ...countedColumns(g, s, c),
    details: () => [
      ['protocol', `${g.proto} (${g.protoNum}), ${g.families.join(' and ')}`],
      ['ports (original destination)', groupPorts(g)],
      ['role', g.role === '' ? 'none: no new entries in the window' : g.role],
      ['new entries by role', g.roleCounts ? describeCounts(g.roleCounts) : 'not counted by this probe tier'],
      ['namespace', `${c.nsName(g.netns)} (inode ${g.netns})`],
      ['inserts in window', String(g.inserts)],
      ['drops in window', String(g.drops)],
      ['entries held', g.occupancy === undefined ? 'not counted (no census)' : `${g.occupancy} (${occupancyAge(s)})`],
      ['busiest ports', busiest.map((p) => `${p.port} (${p.inserts} new${p.occupancy ? `, ${p.occupancy} held` : ''})`).join(', ')],
    ],
  };
}

/** Groups are a pass over the window's ports: cached per snapshot. */
const rangeCache = new WeakMap<SnapshotV1, PortGroup[]>();
const roleCache = new WeakMap<SnapshotV1, PortGroup[]>();

function cached(cache: WeakMap<SnapshotV1, PortGroup[]>, s: SnapshotV1, make: () => PortGroup[]): PortGroup[] {
  let out = cache.get(s);
  if (!out) cache.set(s, (out = make()));
  return out;
}

const groupMatch = (g: PortGroup, ns: (inode: number) => string): Matchable => ({
  family: familyOf(g),
  proto: g.proto,
  ports: g.members.map((m) => m.port),
  nsInode: g.netns,
  nsName: ns(g.netns),
});

/** Port ranges as NOTRACK takes them, and the single ports beside them (portGroups.ts). */
const ranges: Adapter<PortGroup> = {
  items: (s, r) => cached(rangeCache, s, () => rangeGroups(portItems(s, r))),
  // a range's rate over a span: its ports' rates summed
  spans: (g, r) => {
    const sum = [0, 0];
    for (const m of g.members) r.ports.rates(portRowKey(m)).insertsPerSec.forEach((v, i) => (sum[i] = (sum[i] ?? 0) + v));
    return sum;
  },
  inserts: (g) => g.inserts,
  drops: (g) => g.drops,
  occupancy: (g) => g.occupancy ?? 0,
  name: (g) => `${g.proto}/${String(g.port).padStart(5, '0')}`,
  match: groupMatch,
  row: (g, s, c) => ({
    ...groupRow(g, `${g.proto} ${g.ports === 1 ? portText(g.protoNum, g.port) : `${g.port}-${g.portEnd}`}${familyOf(g) === 'ipv6' ? ' (v6)' : ''}`, `r/${g.id}`, s, c),
    role: g.role,
  }),
};

/** The ports grouped by role, per namespace and protocol (portGroups.ts). */
const roles: Adapter<PortGroup> = {
  items: (s) => cached(roleCache, s, () => roleGroups(s.ports)),
  inserts: (g) => g.inserts,
  drops: (g) => g.drops,
  occupancy: (g) => g.occupancy ?? 0,
  name: (g) => `${g.proto} ${g.role || '~'}`,
  match: groupMatch,
  row: (g, s, c) => groupRow(g, `${g.proto} ${g.role || '(none new)'} (${g.ports} port${g.ports === 1 ? '' : 's'})`, `o/${g.id}`, s, c),
};

const ADAPTERS: Record<ViewId, Adapter<never>> = {
  ports: ports as Adapter<never>,
  tuples: tuples as Adapter<never>,
  sources: sources as Adapter<never>,
  namespaces: namespaces as Adapter<never>,
  pods: pods as Adapter<never>,
  ranges: ranges as Adapter<never>,
  roles: roles as Adapter<never>,
};

/** The sort keys `s` cycles through in a view: the 10 s and 60 s rates where the view keeps them (ports,
 * ranges, namespaces), occupancy where a row can hold entries (not a 5-tuple: one each). */
export function sortKeysFor(view: ViewId): SortKey[] {
  if (view === 'tuples') return ['inserts', 'drops', 'name'];
  if (view === 'sources' || view === 'roles') return ['inserts', 'drops', 'occupancy', 'name'];
  return ['inserts', 'inserts10', 'inserts60', 'drops', 'occupancy', 'name'];
}

/** Whether a view shows the 10 s and 60 s columns. */
export function viewKeepsSpans(view: ViewId): boolean {
  return ADAPTERS[view].spans !== undefined;
}

/** How old the occupancy figures are, in words: "census 4s ago", or "live" where the kernel carries them forward. */
export function occupancyAge(s: SnapshotV1): string {
  const o = s.occupancy;
  if (!o) return 'no census';
  const age = `${Math.round(o.ageMs / 1000)}s ago`;
  return o.live ? `live, census ${age}` : `census ${age}`;
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
export function selectRows(s: SnapshotV1, view: ViewId, sort: SortKey, filter: Filter, limit: number, rolling?: Rolling): Selection {
  const a = (view === 'tuples' && s.tupleColumns ? columnTuples(s.tupleColumns) : ADAPTERS[view]) as unknown as Adapter<unknown>;
  const nsNames = new Map(s.namespaces.map((n) => [n.inode, n.name]));
  const nsName = (inode: number): string => nsNames.get(inode) ?? String(inode);
  const items = a.items(s, rolling);
  // no filter: every item, as the shared index list (64,000 tuples cost no array per refresh)
  let idx: ArrayLike<number> & Iterable<number> = firstIndexes(items.length);
  if (filter.terms.length > 0) {
    const kept: number[] = [];
    for (let i = 0; i < items.length; i++) if (matches(filter, a.match(items[i], nsName))) kept.push(i);
    idx = kept;
  }
  const spanOf = (t: unknown): number[] | null => (a.spans && rolling ? a.spans(t, rolling) : null);
  const before = a.orderBy?.(sort) ?? orderFn(a, s, sort, items, spanOf);
  const chosen = topK(idx, limit, before);
  const durationSec = Math.max(0.001, s.durationMs / 1000);
  const totalInserts = s.totals.inserts;
  const ctx: RowContext = {
    nsName,
    perSec: (n) => n / durationSec,
    share: (n) => (totalInserts === null ? null : totalInserts > 0 ? n / totalInserts : 0),
  };
  return { rows: chosen.map((i) => ({ ...a.row(items[i], s, ctx), spanInsertsPerSec: spanOf(items[i]) })), total: idx.length };
}

/** `before(x, y)`: should item x be listed above item y? Ties keep the snapshot's order (the index). */
function orderFn(
  a: Adapter<unknown>,
  s: SnapshotV1,
  sort: SortKey,
  items: ArrayLike<unknown>,
  spanOf: (t: unknown) => number[] | null,
): (x: number, y: number) => boolean {
  if (sort === 'name') {
    return (x, y) => {
      const c = a.name(items[x]).localeCompare(a.name(items[y]));
      return c < 0 || (c === 0 && x < y);
    };
  }
  const occ = a.occupancy;
  // a span's rate, looked up once per item: a sort compares each item many times
  const span = (k: number): ((t: unknown) => number) => {
    const cache = new Map<unknown, number>();
    return (t) => {
      let v = cache.get(t);
      if (v === undefined) cache.set(t, (v = spanOf(t)?.[k] ?? 0));
      return v;
    };
  };
  // Descending by the key, then by the other rate, then snapshot order.
  const keys: ((t: unknown) => number)[] =
    sort === 'drops'
      ? [a.drops, a.inserts]
      : sort === 'occupancy' && occ
        ? [(t) => occ(t, s), a.inserts, a.drops]
        : sort === 'inserts10'
          ? [span(0), a.inserts, a.drops]
          : sort === 'inserts60'
            ? [span(1), a.inserts, a.drops]
            : [a.inserts, a.drops];
  return (x, y) => {
    for (const k of keys) {
      const d = k(items[y]) - k(items[x]);
      if (d !== 0) return d < 0;
    }
    return x < y;
  };
}
