/**
 * Turns windows (source/windows.ts) into Prometheus metrics (prom-client).
 * Counters are advanced by each window's counts, never set, so every counter
 * is monotonic for the life of the process; gauges are set from the window's
 * end. No I/O: `update()` takes a window, the caller makes it.
 *
 * Metrics (all prefixed ctop_, units in the names):
 *   ctop_conntrack_entries{netns}                 gauge   entries in each namespace's table
 *   ctop_conntrack_max_entries                    gauge   net.netfilter.nf_conntrack_max (global)
 *   ctop_conntrack_buckets                        gauge   net.netfilter.nf_conntrack_buckets
 *   ctop_conntrack_fill_ratio                     gauge   fullest namespace's entries ÷ max (the limit applies per namespace)
 *   ctop_conntrack_stat_total{netns,stat}         counter conntrack's statistics (`conntrack -S` names), summed over CPUs
 *   ctop_inserts_total{netns,family,proto,port}   counter new entries per service port (BPF), top K ports + {port="other"}
 *   ctop_drops_total{netns,family,proto,port}     counter packets conntrack dropped, per port, same K slots
 *   ctop_netns_inserts_total{netns}               counter new entries per namespace (all its ports)
 *   ctop_netns_info{netns,name,kind,pod,namespace} gauge  1 per watched namespace: inode → name and owner
 *                                                   (kind: pod, container, systemd, netns, host, process; pod and
 *                                                   namespace: a Kubernetes pod's, else ""); join it on netns
 *   ctop_probe_info{tier}                         gauge   1 for the running probe tier
 *   ctop_probe_program_attached{program}          gauge   1 attached, 0 not
 *   ctop_overflow_total{map}                      counter events not recorded because a BPF map was full
 *   ctop_drops_unparsed_total                     counter drops counted whose headers could not be read
 *   ctop_map_entries{map}, ctop_map_capacity_entries{map}   gauges  BPF map use
 *   ctop_port_series{state="labelled"}, ctop_port_series_limit  gauges  K slots in use / K
 *   ctop_samples_total, ctop_sample_seconds_total, ctop_sample_errors_total  counters  ctop's own overhead
 *   ctop_netns_errors                             gauge   namespaces ctop could not watch
 *   ctop_port_occupancy_entries{netns,family,proto,port}  gauge  entries each port holds (background census), the K ports
 *                                                 holding most + {port="other"} for the rest
 *   ctop_occupancy_census_age_seconds             gauge   how old those figures are
 *   ctop_occupancy_census_cpu_ratio, ctop_occupancy_census_budget_ratio  gauges  the census's CPU share of one core, and its budget
 *   ctop_hash_longest_chain                       gauge   longest hash chain the census walk measured (absent without a walk)
 *
 * Per-CPU statistics are summed per namespace: the kernel source hands over
 * sums, and per-CPU series would multiply cardinality by the CPU count for
 * figures operators read as totals.
 */
import { Counter, Gauge, type Registry, type RegistryContentType } from 'prom-client';
import type { CtStats } from '../model/sample.js';
import type { NamespaceRow, SnapshotV1 } from '../model/snapshot.js';
import { portKey, protoName } from '../model/conntrack.js';
import { OWNER_TEXT_MAX } from '../model/owner.js';
import { cleanText } from '../util/sanitize.js';
import { PortSlots, type Activity } from './portSlots.js';

/** ctop_netns_info's labels: one series per watched namespace, so bounded by them. */
interface NetnsInfoLabels {
  netns: string;
  name: string;
  kind: string;
  pod: string;
  namespace: string;
}

/** Pod and namespace names are other users' text: cleaned (no control characters) and cut like every label. */
function netnsInfoLabels(netns: string, n: NamespaceRow): NetnsInfoLabels {
  const o = n.owner;
  return {
    netns,
    name: n.name,
    kind: o?.kind ?? '',
    pod: o?.kind === 'pod' ? cleanText(o.name, OWNER_TEXT_MAX) : '',
    namespace: o?.kind === 'pod' ? cleanText(o.namespace ?? '', OWNER_TEXT_MAX) : '',
  };
}

/** conntrack -S names for each statistic. */
const STAT_NAMES: Record<keyof CtStats, string> = {
  found: 'found',
  invalid: 'invalid',
  insert: 'insert',
  insertFailed: 'insert_failed',
  drop: 'drop',
  earlyDrop: 'early_drop',
  error: 'error',
  searchRestart: 'search_restart',
  clashResolve: 'clash_resolve',
  chainTooLong: 'chaintoolong',
};

const PORT_LABELS = ['netns', 'family', 'proto', 'port'] as const;
const OVERFLOW_MAPS = ['ports', 'tuples', 'drop_tuples', 'netns'] as const;

function portLabels(key: string): Record<(typeof PORT_LABELS)[number], string> {
  const [netns = '', family = '', proto = '', port = ''] = key.split('/');
  return { netns, family, proto: protoName(Number(proto)), port };
}

export class Exporter {
  readonly slots: PortSlots;
  /** The last value of each cumulative counter the windows carry (map overflows). */
  private readonly prevTotals = new Map<string, number>();
  private readonly liveNetns = new Map<number, NetnsInfoLabels>();

  private readonly entries: Gauge<'netns'>;
  private readonly max: Gauge;
  private readonly buckets: Gauge;
  private readonly fill: Gauge;
  private readonly stat: Counter<'netns' | 'stat'>;
  private readonly inserts: Counter<(typeof PORT_LABELS)[number]>;
  private readonly drops: Counter<(typeof PORT_LABELS)[number]>;
  private readonly netnsInserts: Counter<'netns'>;
  private readonly netnsInfo: Gauge<keyof NetnsInfoLabels>;
  private readonly probeInfo: Gauge<'tier'>;
  private readonly programAttached: Gauge<'program'>;
  private readonly programSkipped: Gauge<'program'>;
  private readonly overflow: Counter<'map'>;
  private readonly dropsUnparsed: Counter;
  private readonly mapEntries: Gauge<'map'>;
  private readonly mapCapacity: Gauge<'map'>;
  private readonly portSeries: Gauge<'state'>;
  private readonly portSeriesLimit: Gauge;
  private readonly samples: Counter;
  private readonly sampleSeconds: Counter;
  private readonly sampleErrors: Counter;
  private readonly netnsErrors: Gauge;
  private readonly occupancy: Gauge<(typeof PORT_LABELS)[number]>;
  private readonly occupancyAge: Gauge;
  private readonly censusCpu: Gauge;
  private readonly censusBudget: Gauge;
  private readonly longestChain: Gauge;
  /** port label sets the occupancy gauge holds now */
  private occupancyLabelled = new Set<string>();
  private readonly topPorts: number;

  constructor(registry: Registry<RegistryContentType>, topPorts: number) {
    const r = [registry];
    this.slots = new PortSlots(topPorts);
    this.entries = new Gauge({ name: 'ctop_conntrack_entries', help: 'Entries in the conntrack table of each network namespace', labelNames: ['netns'], registers: r });
    this.max = new Gauge({ name: 'ctop_conntrack_max_entries', help: 'net.netfilter.nf_conntrack_max (global; each namespace is checked against it)', registers: r });
    this.buckets = new Gauge({ name: 'ctop_conntrack_buckets', help: 'net.netfilter.nf_conntrack_buckets', registers: r });
    this.fill = new Gauge({ name: 'ctop_conntrack_fill_ratio', help: 'Entries of the fullest namespace divided by nf_conntrack_max', registers: r });
    this.stat = new Counter({ name: 'ctop_conntrack_stat_total', help: 'Conntrack statistics (conntrack -S names), summed over CPUs, per namespace', labelNames: ['netns', 'stat'], registers: r });
    this.inserts = new Counter({ name: 'ctop_inserts_total', help: 'New conntrack entries per service port (top K ports; the rest in port="other")', labelNames: [...PORT_LABELS], registers: r });
    this.drops = new Counter({ name: 'ctop_drops_total', help: 'Packets conntrack dropped, per service port (top K ports; the rest in port="other")', labelNames: [...PORT_LABELS], registers: r });
    this.netnsInserts = new Counter({ name: 'ctop_netns_inserts_total', help: 'New conntrack entries per namespace', labelNames: ['netns'], registers: r });
    this.netnsInfo = new Gauge({ name: 'ctop_netns_info', help: 'Watched network namespaces: inode and name', labelNames: ['netns', 'name', 'kind', 'pod', 'namespace'], registers: r });
    this.probeInfo = new Gauge({ name: 'ctop_probe_info', help: 'The probe tier ctop runs (1)', labelNames: ['tier'], registers: r });
    this.programAttached = new Gauge({ name: 'ctop_probe_program_attached', help: '1 if the BPF program is attached', labelNames: ['program'], registers: r });
    this.programSkipped = new Gauge({ name: 'ctop_probe_program_skipped_runs', help: 'Runs the kernel skipped since load because the program was already running on that CPU (events not counted)', labelNames: ['program'], registers: r });
    this.overflow = new Counter({ name: 'ctop_overflow_total', help: 'Events not recorded per key because a BPF map was full', labelNames: ['map'], registers: r });
    this.dropsUnparsed = new Counter({ name: 'ctop_drops_unparsed_total', help: 'Drops counted whose packet headers could not be read', registers: r });
    this.mapEntries = new Gauge({ name: 'ctop_map_entries', help: 'Entries in ctop BPF maps', labelNames: ['map'], registers: r });
    this.mapCapacity = new Gauge({ name: 'ctop_map_capacity_entries', help: 'Capacity of ctop BPF maps', labelNames: ['map'], registers: r });
    this.portSeries = new Gauge({ name: 'ctop_port_series', help: 'Per-port series slots in use', labelNames: ['state'], registers: r });
    this.portSeriesLimit = new Gauge({ name: 'ctop_port_series_limit', help: 'Per-port series slots (--top-ports K)', registers: r });
    this.samples = new Counter({ name: 'ctop_samples_total', help: 'Samples ctop took of the kernel', registers: r });
    this.sampleSeconds = new Counter({ name: 'ctop_sample_seconds_total', help: 'Time ctop spent sampling and updating metrics', registers: r });
    this.sampleErrors = new Counter({ name: 'ctop_sample_errors_total', help: 'Samples that failed', registers: r });
    this.netnsErrors = new Gauge({ name: 'ctop_netns_errors', help: 'Namespaces ctop could not watch', registers: r });
    this.occupancy = new Gauge({ name: 'ctop_port_occupancy_entries', help: 'Entries each service port holds in the table, from the background census (the K ports holding most; the rest in port="other")', labelNames: [...PORT_LABELS], registers: r });
    this.occupancyAge = new Gauge({ name: 'ctop_occupancy_census_age_seconds', help: 'Age of the census behind ctop_port_occupancy_entries', registers: r });
    this.censusCpu = new Gauge({ name: 'ctop_occupancy_census_cpu_ratio', help: 'CPU time of the background census over the time since it started, share of one core', registers: r });
    this.censusBudget = new Gauge({ name: 'ctop_occupancy_census_budget_ratio', help: 'CPU budget of the background census, share of one core (--census-budget)', registers: r });
    this.longestChain = new Gauge({ name: 'ctop_hash_longest_chain', help: 'Longest conntrack hash chain the census walk measured (the kernel refuses inserts past 50-79)', registers: r });
    this.topPorts = topPorts;
    this.portSeriesLimit.set(topPorts);
    this.portSeries.set({ state: 'labelled' }, 0);
    // Present from the first scrape, so rate() has a zero to start from.
    this.inserts.inc({ port: 'other' }, 0);
    this.drops.inc({ port: 'other' }, 0);
  }

  /** Cumulative value → counter increment (never negative: a reset counts from zero). */
  private step(key: string, now: number): number {
    const before = this.prevTotals.get(key) ?? 0;
    this.prevTotals.set(key, now);
    return now >= before ? now - before : now;
  }

  update(w: SnapshotV1, elapsedSeconds = 0): void {
    this.max.set(w.table.max);
    this.buckets.set(w.table.buckets);
    this.fill.set(w.table.fillRatio);
    const present = new Set<number>();
    for (const n of w.namespaces) {
      present.add(n.inode);
      const netns = String(n.inode);
      this.entries.set({ netns }, n.count);
      const info = netnsInfoLabels(netns, n);
      const prev = this.liveNetns.get(n.inode);
      if (prev !== undefined && JSON.stringify(prev) !== JSON.stringify(info)) this.netnsInfo.remove(prev);
      this.netnsInfo.set(info, 1);
      this.liveNetns.set(n.inode, info);
      for (const k of Object.keys(STAT_NAMES) as (keyof CtStats)[]) this.stat.inc({ netns, stat: STAT_NAMES[k] }, n.stats?.[k] ?? 0);
      if (n.inserts) this.netnsInserts.inc({ netns }, n.inserts);
    }
    this.forgetVanished(present);

    // Per port: the window's activity, split into K slots and "other".
    const activity = new Map<string, Activity>();
    for (const p of w.ports) {
      if (p.inserts > 0 || p.drops > 0) activity.set(portKey({ ...p, proto: p.protoNum }), { inserts: p.inserts, drops: p.drops });
    }
    const a = this.slots.assign(activity);
    for (const key of a.added) {
      // Start both series at zero so each port has the same label sets in both.
      this.inserts.inc(portLabels(key), 0);
      this.drops.inc(portLabels(key), 0);
    }
    for (const [key, d] of a.labelled) {
      const labels = portLabels(key);
      if (d.inserts > 0) this.inserts.inc(labels, d.inserts);
      if (d.drops > 0) this.drops.inc(labels, d.drops);
    }
    if (a.other.inserts > 0) this.inserts.inc({ port: 'other' }, a.other.inserts);
    if (a.other.drops > 0) this.drops.inc({ port: 'other' }, a.other.drops);
    this.portSeries.set({ state: 'labelled' }, this.slots.size);

    // Probe and maps.
    this.probeInfo.reset();
    this.probeInfo.set({ tier: w.probe.tier }, 1);
    this.programAttached.reset();
    for (const p of w.probe.programs) this.programAttached.set({ program: p.name }, p.attached ? 1 : 0);
    this.programSkipped.reset();
    for (const p of w.probe.programs) this.programSkipped.set({ program: p.name }, p.skippedRuns ?? 0);
    const o = w.overflow;
    const overflows: Record<(typeof OVERFLOW_MAPS)[number], number> = {
      ports: o.portMapFull,
      tuples: o.tupleMapFull,
      drop_tuples: o.dropTupleMapFull,
      netns: o.netnsMapFull,
    };
    for (const m of OVERFLOW_MAPS) this.overflow.inc({ map: m }, this.step(`overflow/${m}`, overflows[m]));
    this.dropsUnparsed.inc(this.step('dropUnparsed', o.dropsUnparsed));
    this.mapEntries.set({ map: 'ports' }, o.portMapEntries);
    this.mapEntries.set({ map: 'tuples' }, o.tupleMapEntries);
    this.mapEntries.set({ map: 'drop_tuples' }, o.dropTupleMapEntries);
    this.mapCapacity.set({ map: 'ports' }, o.portMapCapacity);
    this.mapCapacity.set({ map: 'tuples' }, o.tupleMapCapacity);
    this.mapCapacity.set({ map: 'drop_tuples' }, o.dropTupleMapCapacity);
    this.netnsErrors.set(w.netnsErrors.length);
    this.samples.inc();
    this.sampleSeconds.inc(elapsedSeconds);
  }

  /**
   * Who holds the table: the window's occupancy section (the latest census,
   * carried forward by the kernel's per-port counts on the function tiers),
   * bounded to the K ports holding most plus one "other" series. Ports that
   * leave the K end their series. Windows without a census change nothing.
   */
  updateOccupancy(w: SnapshotV1): void {
    const sec = w.occupancy;
    if (!sec) return;
    const kept = sec.ports.slice(0, this.topPorts);
    const now = new Set<string>();
    for (const p of kept) {
      const key = portKey({ netns: p.netns, family: p.family, proto: p.protoNum, port: p.port });
      now.add(key);
      this.occupancy.set(portLabels(key), p.entries);
    }
    for (const key of this.occupancyLabelled) if (!now.has(key)) this.occupancy.remove(portLabels(key));
    this.occupancyLabelled = now;
    this.occupancy.set({ port: 'other' }, sec.omittedEntries + sec.ports.slice(kept.length).reduce((a, p) => a + p.entries, 0));
    this.occupancyAge.set(sec.ageMs / 1000);
    if (sec.cost) {
      this.censusCpu.set(sec.cost.cpuShare);
      this.censusBudget.set(sec.cost.budgetShare);
    }
    if (w.hashBuckets?.method === 'bpf-hash-walk') this.longestChain.set(w.hashBuckets.longestChain);
  }

  sampleFailed(): void {
    this.sampleErrors.inc();
  }

  /**
   * A namespace that is gone can count nothing more: end its series (a series
   * that ends is not a counter going down) and give its port slots back, so
   * container churn does not grow memory or pin the K slots forever.
   */
  private forgetVanished(present: Set<number>): void {
    for (const [inode, info] of [...this.liveNetns]) {
      if (present.has(inode)) continue;
      const netns = String(inode);
      this.liveNetns.delete(inode);
      this.entries.remove({ netns });
      this.netnsInfo.remove(info);
      this.netnsInserts.remove({ netns });
      for (const stat of Object.values(STAT_NAMES)) this.stat.remove({ netns, stat });
      for (const key of this.slots.release((k) => k.startsWith(`${netns}/`))) {
        this.inserts.remove(portLabels(key));
        this.drops.remove(portLabels(key));
      }
    }
  }
}
