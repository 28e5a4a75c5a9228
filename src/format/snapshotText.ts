/** The human-readable `ctop snapshot` report. */
import type { SnapshotV1 } from '../model/snapshot.js';
import { TRAFFIC_ROLES, type RoleCounts, type TrafficRole } from '../model/roles.js';
import { formatMs } from '../util/duration.js';
import { formatNumber, formatTable } from './table.js';
import { percent } from '../util/text.js';
import { cleanLines } from '../util/sanitize.js';

function nsLabel(s: SnapshotV1, inode: number): string {
  return s.namespaces.find((n) => n.inode === inode)?.name ?? String(inode);
}

function addr(a: string, family: string, port: number): string {
  return family === 'ipv6' ? `[${a}]:${port}` : `${a}:${port}`;
}

/** The role most of a port's new entries had, with its share when others
 * had some too ("client 75%"); "-" without inserts or role counts. */
export function dominantRole(roles: RoleCounts | undefined): string {
  if (!roles) return '-';
  let total = 0;
  let best: TrafficRole = TRAFFIC_ROLES[0];
  for (const r of TRAFFIC_ROLES) {
    total += roles[r];
    if (roles[r] > roles[best]) best = r;
  }
  if (total === 0) return '-';
  return roles[best] === total ? best : `${best} ${Math.floor((roles[best] * 100) / total)}%`;
}

export function formatSnapshot(s: SnapshotV1): string {
  const out: string[] = [];
  const r = s.rates;
  out.push(`ctop snapshot  ${s.host}  kernel ${s.kernel}  ${s.startedAt}  window ${formatMs(s.durationMs)}`);
  out.push(`probe tier: ${s.probe.tier}${s.probe.refused.map((x) => `  (${x.tier} refused: ${x.reason})`).join('')}`);
  out.push('');
  out.push(
    `table: ${formatNumber(s.table.count)} entries in ${s.namespaces.length} namespace(s); limit ${formatNumber(s.table.max)} per namespace, ` +
      `fullest at ${percent(s.table.fillRatio)}; ${formatNumber(s.table.buckets)} hash buckets`,
  );
  out.push(
    `rates/s: inserts ${r.insertsPerSec === null ? 'n/a (statistics tier)' : formatNumber(r.insertsPerSec)}  drops ${formatNumber(r.dropsPerSec)}  ` +
      `early_drop ${formatNumber(r.earlyDropsPerSec)}  insert_failed ${formatNumber(r.insertFailedPerSec)}  ` +
      `clash_resolve ${formatNumber(r.clashResolvePerSec)}  search_restart ${formatNumber(r.searchRestartPerSec)}  chaintoolong ${formatNumber(r.chainTooLongPerSec)}`,
  );
  if (s.totals.drops > 0) {
    out.push(
      `DROPS: conntrack refused ${formatNumber(s.totals.drops)} packet(s) in this window (table full or tracker drop)` +
        (s.totals.dropsAttributed === null ? '' : `; ${formatNumber(s.totals.dropsAttributed)} attributed below`),
    );
  }
  out.push('');
  if (s.probe.tier === 'stats') {
    out.push('per-port and per-tuple counts need the BPF tier (see `ctop doctor`)');
  } else {
    out.push('top ports (new entries in this window)');
    out.push(
      s.ports.length === 0
        ? '  none'
        : formatTable(
            ['namespace', 'family', 'proto', 'port', 'inserts', 'drops', 'role'],
            s.ports.map((p) => [nsLabel(s, p.netns), p.family, p.proto, String(p.port), p.inserts, p.drops, dominantRole(p.roles)]),
          ),
    );
    if (s.overflow.portsOmitted > 0) out.push(`  … ${s.overflow.portsOmitted} more (--top)`);
    out.push('');
    out.push('top tuples');
    out.push(
      s.tuples.length === 0
        ? '  none'
        : formatTable(
            ['proto', 'source', 'destination', 'inserts', 'drops'],
            s.tuples.map((t) => [t.proto, addr(t.src, t.family, t.sport), addr(t.dst, t.family, t.dport), t.inserts, t.drops]),
          ),
    );
    if (s.overflow.tuplesOmitted > 0) out.push(`  … ${s.overflow.tuplesOmitted} more (--top)`);
  }
  if (s.occupancy) {
    const occ = s.occupancy;
    const how = occ.method === 'bpf-hash-walk' ? 'in-kernel hash walk' : `ctnetlink dump${occ.fallbackReason ? ` (${occ.fallbackReason})` : ''}`;
    out.push('');
    out.push(`who holds the table (${formatNumber(occ.entries)} entries; census by ${how}, ${formatMs(occ.ageMs)} before the window's end${occ.live ? ', carried forward by the kernel\'s per-port counts' : ''})`);
    out.push(
      occ.ports.length === 0
        ? '  none'
        : formatTable(
            ['namespace', 'family', 'proto', 'port', 'entries', 'share'],
            occ.ports.map((p) => [nsLabel(s, p.netns), p.family, p.proto, String(p.port), p.entries, percent(occ.entries > 0 ? p.entries / occ.entries : 0)]),
          ),
    );
    if (occ.portsOmitted > 0) out.push(`  … ${occ.portsOmitted} more ports holding ${formatNumber(occ.omittedEntries)} entries (--top)`);
  }
  if (s.hashBuckets) {
    const h = s.hashBuckets;
    out.push(
      `hash chains (${h.method === 'bpf-hash-walk' ? 'measured' : `model: ${h.fallbackReason ?? 'no walk'}`}): longest ${h.longestChain} ` +
        `(the kernel refuses inserts past ${h.chainLimit.min}-${h.chainLimit.max}), load ${h.loadFactor.toFixed(2)} nodes per bucket`,
    );
  }
  out.push('');
  out.push('namespaces');
  out.push(
    formatTable(
      ['namespace', 'inode', 'entries', 'fill', 'inserts', 'drops', 'early_drop', 'insert_failed'],
      s.namespaces.map((n) => [n.name, String(n.inode), n.count, percent(n.fillRatio), n.inserts ?? 'n/a', n.drops, n.earlyDrops, n.insertFailed]),
    ),
  );
  const o = s.overflow;
  out.push('');
  out.push(
    `maps: port hash ${formatNumber(o.portMapEntries)}/${formatNumber(o.portMapCapacity)}, tuples ${formatNumber(o.tupleMapEntries)}/${formatNumber(o.tupleMapCapacity)}, ` +
      `drop tuples ${formatNumber(o.dropTupleMapEntries)}/${formatNumber(o.dropTupleMapCapacity)}; ` +
      `overflow: port map full ${formatNumber(o.portMapFull)}, tuple map full ${formatNumber(o.tupleMapFull)}, drop tuple map full ${formatNumber(o.dropTupleMapFull)}, ` +
      `unparsed drops ${formatNumber(o.dropsUnparsed)}, namespace map full ${formatNumber(o.netnsMapFull)}`,
  );
  for (const e of s.netnsErrors) out.push(`not watched: ${e.name}: ${e.error}`);
  return cleanLines(out.join('\n')); // names in it come from other users
}
