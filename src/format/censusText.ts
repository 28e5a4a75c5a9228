/** The human-readable `ctop census` report: every section names its method. */
import { byPort, type CensusReport } from '../model/census.js';
import { formatNumber, formatTable } from './table.js';
import { mib, percent } from '../util/text.js';
import { cleanLines } from '../util/sanitize.js';

const OCCUPANCY_WORDS = {
  'ctnetlink-dump': 'ctnetlink dump (libnetfilter_conntrack), counted in C',
  'bpf-hash-walk': 'counted in the kernel during the BPF hash walk',
} as const;

const METHOD_WORDS = {
  'bpf-hash-walk': 'measured: every bucket walked in the kernel (BPF)',
  model: 'MODEL: uniform hash, Poisson (not measured)',
} as const;

export function formatCensus(c: CensusReport, top: number): string {
  const out: string[] = [];
  out.push(`ctop census  ${c.takenAt}  counted in ${c.occupancyMs.toFixed(0)} ms`);
  out.push(
    `occupancy [${OCCUPANCY_WORDS[c.methods.occupancy]}]` +
      (c.methods.occupancyFallbackReason ? ` (in-kernel count not used: ${c.methods.occupancyFallbackReason})` : ''),
  );
  out.push(
    `  ${formatNumber(c.entries)} entries in ${c.namespaces.length} namespace(s): assured ${formatNumber(c.assured)}, ` +
      `unreplied ${formatNumber(c.unreplied)} (early drop evicts these first)`,
  );
  for (const ns of c.namespaces) {
    out.push('');
    out.push(`namespace ${ns.name} (${ns.inode}): ${formatNumber(ns.entries)} entries, assured ${formatNumber(ns.assured)}, unreplied ${formatNumber(ns.unreplied)}`);
    const ports = byPort(ns.groups);
    const shown = top > 0 ? ports.slice(0, top) : ports;
    out.push(
      ports.length === 0
        ? '  (empty)'
        : formatTable(
            ['family', 'proto', 'port', 'entries', 'share', 'assured', 'unreplied'],
            shown.map((p) => [p.family, p.proto, String(p.port), p.entries, percent(ns.entries ? p.entries / ns.entries : 0), p.assured, p.unreplied]),
          ).replace(/^/gm, '  '),
    );
    if (shown.length < ports.length) out.push(`  … ${ports.length - shown.length} more ports (--top)`);
    const tcp = ns.groups.filter((g) => g.state !== null);
    if (tcp.length > 0) {
      const byState = new Map<string, number>();
      for (const g of tcp) byState.set(g.state!, (byState.get(g.state!) ?? 0) + g.entries);
      out.push(`  tcp states: ${[...byState].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s} ${formatNumber(n)}`).join(', ')}`);
    }
    const addrs = (label: string, rows: typeof ns.topSources, distinct: number, overflow: number) => {
      out.push(
        `  top ${label} (${formatNumber(distinct)} distinct${overflow ? `, ${formatNumber(overflow)} entries past the address table` : ''}): ` +
          (rows.length ? rows.slice(0, 5).map((r) => `${r.addr} ${formatNumber(r.entries)}`).join(', ') : 'none'),
      );
    };
    addrs('sources', ns.topSources, ns.distinctSources, ns.sourceOverflow);
    addrs('destinations', ns.topDestinations, ns.distinctDestinations, ns.destinationOverflow);
    if (ns.uncounted) out.push(`  ${formatNumber(ns.uncounted)} entries could not be counted (unparsable, or the group table was full)`);
    if (ns.tcpRemainingOverflow) out.push(`  ${formatNumber(ns.tcpRemainingOverflow)} TCP entries left out of the seconds-left histogram (its table was full)`);
  }
  out.push('');
  const m = c.memory;
  out.push(
    `memory: entry ${m.entryBytes === null ? 'size unknown (no BTF)' : `${m.entryBytes} B [btf: sizeof(struct nf_conn)]`}` +
      (m.expectedBytes === null ? '' : `, expected ${mib(m.expectedBytes)} for ${formatNumber(c.entries)} entries`) +
      (m.slab ? `; slab ${m.slab.name}: ${formatNumber(m.slab.activeObjs)} objects of ${m.slab.objSizeBytes} B, ${mib(m.slab.bytes)} [slabinfo]` : '; slab [unavailable]'),
  );
  const b = c.buckets;
  out.push('');
  out.push(
    `hash buckets [${METHOD_WORDS[b.method]}]` +
      (b.fallbackReason ? ` (walk not used: ${b.fallbackReason})` : '') +
      (b.locatedBy
        ? ` (table found from ${b.locatedBy}; ${b.runs} BPF runs of ${b.bucketsPerRun} buckets${b.threads && b.threads > 1 ? ` on ${b.threads} threads` : ''}, ${b.walkMs?.toFixed(1)} ms, longest run ${b.maxRunMs?.toFixed(1)} ms)`
        : ''),
  );
  out.push(
    `  ${formatNumber(b.buckets)} buckets, ${formatNumber(b.nodes)} chain nodes (2 per entry, one per direction), load factor ${b.loadFactor.toFixed(2)}; ` +
      `longest chain ${b.longestChain}, kernel limit ${b.chainLimit.min}-${b.chainLimit.max}, headroom ${b.headroom}`,
  );
  const rows = b.histogram.filter((h, i) => h.buckets >= 0.5 || i < 9 || h.orMore);
  out.push(formatTable(['chain', 'buckets'], rows.map((h) => [`${h.k}${h.orMore ? '+' : ''}`, b.method === 'model' ? Math.round(h.buckets) : h.buckets])).replace(/^/gm, '  '));
  if (b.resizeRestarts) out.push(`  the table was resized during the walk: walked again on the new one (${b.buckets} buckets)`);
  if (b.inconsistentBuckets) out.push(`  ${b.inconsistentBuckets} bucket(s) changed under the walk twice and are left out`);
  const r = c.rates;
  out.push(
    `search_restart ${formatNumber(r.searchRestart)} (${r.searchRestartPerSec.toFixed(1)}/s), chaintoolong ${formatNumber(r.chainTooLong)} (${r.chainTooLongPerSec.toFixed(1)}/s) ` +
      `[ctnetlink per-CPU statistics, all namespaces, rates over ${(r.windowMs / 1000).toFixed(1)} s]`,
  );
  return cleanLines(out.join('\n')); // names in it come from other users
}
