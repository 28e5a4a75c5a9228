/**
 * The live source: loads ctop's BPF programs through the addon, watches every
 * network namespace (or the one --netns names) and reads maps and conntrack
 * statistics on demand.
 *
 * The native core picks the tier (ctop_probe_open_best: fentry, kprobe,
 * netfilter, best first, each refusal in the kernel's words); this source
 * adds what only it can see: a netfilter tier that no namespace would take a
 * link for is refused too, and with no BPF tier the "stats" tier reads
 * ctnetlink statistics only, no per-port data.
 */
import { statSync } from 'node:fs';
import { CtopError, ExitCode, describeError, isNativeError } from '../errors.js';
import { loadAddon, type Addon, type NativeNetns, type NativeProbe, type NativeRefusal } from '../native/addon.js';
import { sumCpuStats, type BpfTier, type CtCpuStat, type CtStats, type NetnsSample, type PortEvents, type ProbeInfo, type ProgramStatus, type Sample, type Source, type Tier, type Totals, type TupleColumns, type TupleCount } from '../model/sample.js';
import { LAYOUT, decodeEvents, decodePorts, decodeTotals, decodeTupleColumns, decodeTuples, TOTAL } from '../native/decode.js';
import { btfProblem } from '../preflight.js';
import { portKey } from '../model/conntrack.js';
import { resolveNetns, scanNamespaces, type NetnsRef } from './netnsScan.js';
import { readNetfilterSysctl } from './sysctl.js';

export interface KernelSourceOptions {
  tier: 'auto' | Tier;
  /** --netns NAME|PATH; undefined watches every namespace. */
  netns?: string;
  maxPorts: number;
  maxTuples: number;
  maxDropTuples: number;
  /** How often to look for new and vanished namespaces. */
  rescanMs: number;
}

interface Watched {
  ref: NetnsRef;
  handle: NativeNetns;
}

export class KernelSource implements Source {
  private addon!: Addon;
  private probe?: NativeProbe;
  private target?: NetnsRef;
  private probeTier?: BpfTier;
  private readonly watched = new Map<number, Watched>();
  private netnsErrors = new Map<number, { name: string; error: string }>();
  private lastScanMs = 0;
  private info: ProbeInfo = { tier: 'stats', programs: [], refused: [] };
  private dropsError?: string;

  constructor(private readonly opts: KernelSourceOptions) {}

  async start(): Promise<void> {
    this.addon = loadAddon();
    this.target = this.opts.netns ? resolveNetns(this.opts.netns) : undefined;
    this.loadProbe();
    this.rescan();
    if (this.probeTier === 'netfilter' && this.watched.size > 0 && [...this.watched.values()].every((w) => w.handle.links() === 0)) {
      // Loaded but no namespace would take a netfilter link (kernel < 6.4).
      const reason = [...this.netnsErrors.values()].map((x) => x.error).join('; ') || 'no netfilter link could be created';
      this.closeAll();
      this.probe?.close();
      this.probe = undefined;
      this.probeTier = undefined;
      this.refuse('netfilter', new Error(reason));
      this.rescan(); // ctnetlink sockets only
    }
    // tp_btf/kfree_skb counts the drops of the netfilter tier, and of the
    // function tiers where the kernel has the drop reason (the loader's
    // choice: their alloc probes elsewhere, attached at load).
    if (this.probe && this.probe.programs().some((p) => p.attach === 'drops')) {
      // The drop program matches kfree_skb events against the kernel's
      // per-CPU drop statistic: give it each namespace's starting values
      // before it runs (see consume_conntrack_drop in bpf/ctop.bpf.c).
      for (const w of this.watched.values()) this.probe.seedDrops(w.handle);
      try {
        this.probe.attachDrops();
      } catch (e) {
        this.dropsError = describeError(e);
      }
    }
    this.info = this.describe();
    if (this.watched.size === 0) {
      const why = [...this.netnsErrors.values()].map((x) => `${x.name}: ${x.error}`).join('; ');
      throw new CtopError(`could not watch any network namespace (${why || 'none found'})`, 'run ctop as root', ExitCode.privileges);
    }
  }

  /** The best tier the core loads (or the forced one), each refusal recorded. */
  private loadProbe(): void {
    if (this.opts.tier === 'stats') return;
    const noBtf = btfProblem();
    if (noBtf) {
      for (const tier of this.opts.tier === 'auto' ? this.addon.tiers : [this.opts.tier]) this.refuse(tier, new Error(noBtf));
      return;
    }
    try {
      this.probe = new this.addon.Probe({
        maxPorts: this.opts.maxPorts,
        maxTuples: this.opts.maxTuples,
        maxDropTuples: this.opts.maxDropTuples,
        targetNetns: this.target?.inode ?? 0,
        tier: this.opts.tier,
      });
    } catch (e) {
      const refused = (e as { refused?: NativeRefusal[] }).refused;
      if (!isNativeError(e) || !refused) throw e;
      for (const r of refused) this.refuse(r.tier, r);
      return;
    }
    this.probeTier = this.probe.tier();
    for (const r of this.probe.refused()) this.refuse(r.tier, r);
  }

  private refuse(tier: Tier, e: unknown): void {
    const reason = describeError(e);
    if (this.opts.tier === tier) {
      throw new CtopError(
        `the ${tier} tier was forced but the kernel refused it: ${reason}`,
        'run `ctop doctor` to see what this kernel offers, or drop --tier',
        ExitCode.kernel,
        isNativeError(e) ? e.log : undefined,
      );
    }
    this.info.refused.push({ tier, reason });
  }

  /** The probe's description with each program's skipped runs as they stand (they grow while it runs). */
  private withSkippedRuns(probe: NativeProbe): ProbeInfo {
    const skipped = new Map(probe.programs().map((p) => [p.name, p.skippedRuns]));
    if (![...skipped.values()].some((n) => n > 0)) return this.info;
    return {
      ...this.info,
      programs: this.info.programs.map((p) => {
        const n = skipped.get(p.name) ?? 0;
        return n > 0 ? { ...p, skippedRuns: n } : p;
      }),
    };
  }

  private describe(): ProbeInfo {
    const refused = this.info.refused;
    if (!this.probe || !this.probeTier) return { tier: 'stats', programs: [], refused };
    const linked = [...this.watched.values()].filter((w) => w.handle.links() > 0).length;
    const programs = this.probe.programs().map((p): ProgramStatus => {
      const base = { name: p.name, hook: p.hook, ...(p.skippedRuns > 0 ? { skippedRuns: p.skippedRuns } : {}) };
      if (p.attach === 'netns') {
        return linked > 0 ? { ...base, attached: true } : { ...base, attached: false, error: 'no namespace accepted a netfilter link' };
      }
      if (p.attach === 'drops' && this.dropsError) return { ...base, attached: p.attached, error: this.dropsError };
      return { ...base, attached: p.attached };
    });
    return { tier: this.probeTier, programs, refused };
  }

  /** Attach to namespaces that appeared, let go of those that vanished. */
  private rescan(): void {
    this.lastScanMs = performance.now();
    const refs = this.target ? (targetStillThere(this.target) ? [this.target] : []) : scanNamespaces();
    if (this.target && refs.length === 0) {
      this.netnsErrors.set(this.target.inode, { name: this.target.name, error: 'the namespace vanished; ctop let go of it' });
    }
    const seen = new Set<number>();
    for (const ref of refs) {
      seen.add(ref.inode);
      const w = this.watched.get(ref.inode);
      if (w) {
        // names follow their owners: a pod's namespace is named once its processes show
        if (!this.target) w.ref = ref;
        continue;
      }
      try {
        const handle = new this.addon.Netns(ref.path, this.probe && this.probeTier === 'netfilter' ? this.probe.nfProgFd() : -1);
        this.watched.set(ref.inode, { ref, handle });
        this.netnsErrors.delete(ref.inode);
      } catch (e) {
        // A process that exited between the scan and the open is not an error.
        if (isNativeError(e) && e.errno === 2) continue;
        this.netnsErrors.set(ref.inode, { name: ref.name, error: describeError(e) });
      }
    }
    // Our links and socket hold a reference on the namespace: keeping them
    // after everyone else left would keep a dead container's network alive.
    for (const [inode, w] of this.watched) {
      if (!seen.has(inode)) {
        w.handle.close();
        this.watched.delete(inode);
      }
    }
  }

  /** Attach to new namespaces and release vanished ones if a rescan is due;
   * cheap (no map reads), for callers that only need to keep watching. */
  rescanIfDue(): void {
    if (performance.now() - this.lastScanMs >= this.opts.rescanMs) {
      this.rescan();
      this.info = this.describe();
    }
  }

  sample(): Sample {
    this.rescanIfDue();
    const namespaces: NetnsSample[] = [];
    for (const w of this.watched.values()) {
      try {
        namespaces.push({
          inode: w.ref.inode,
          name: w.ref.name,
          ...(w.ref.owner ? { owner: w.ref.owner } : {}),
          count: w.handle.table().count,
          stats: sumCpuStats(w.handle.cpuStats()),
          links: w.handle.links(),
        });
      } catch (e) {
        this.netnsErrors.set(w.ref.inode, { name: w.ref.name, error: describeError(e) });
      }
    }
    let totals: Totals = { inserts: 0, drops: 0, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 };
    let dropTupleEntries = 0;
    let tupleEntries = 0;
    let portHashEntries = 0;
    let ports: Sample['ports'] = [];
    let events: PortEvents[] = [];
    if (this.probe) {
      const t = this.probe.readTotals();
      totals = decodeTotals(t);
      if (this.probeTier !== 'netfilter') events = decodeEvents(this.probe.readEvents());
      ports = decodePorts(this.probe.readPorts());
      portHashEntries = this.probe.portHashEntries();
      tupleEntries = t[TOTAL.tupleEntries] ?? 0;
      dropTupleEntries = t[TOTAL.dropTupleEntries] ?? 0;
    }
    return {
      monoMs: performance.now(),
      wallTime: new Date().toISOString(),
      probe: this.probe ? this.withSkippedRuns(this.probe) : this.info,
      ports,
      tuples: [],
      events,
      totals,
      namespaces,
      max: readNetfilterSysctl('nf_conntrack_max', 0),
      buckets: readNetfilterSysctl('nf_conntrack_buckets', 0),
      capacity: this.probe ? this.probe.capacity() : { ports: 0, tuples: 0, dropTuples: 0 },
      portHashEntries,
      tupleEntries,
      dropTupleEntries,
      netnsErrors: [...this.netnsErrors.values()],
    };
  }

  /**
   * The tuples that moved since the previous call, with the growth as counts:
   * the addon keeps each tuple's last value by raw key, so only those are
   * decoded. Callers that show no tuples never call it: reading 16k+ tuples
   * a second is most of what a 1 Hz sample costs.
   */
  takeTupleGrowth(): TupleCount[] {
    return this.probe ? decodeTuples(this.probe.readTupleDeltas()) : [];
  }

  /** Two buffers for takeTupleColumns, used in turn: the window before stays readable while the next fills. */
  private tupleBuffers: Buffer[] = [];
  private tupleBufferAt = 0;

  /** As takeTupleGrowth, as columns over the records: no object per tuple, and no new buffer per
   * read (at 64,000 tuples a read is 4 MB, whose garbage cost the screen's slowest refreshes). */
  takeTupleColumns(): TupleColumns {
    if (!this.probe) return decodeTupleColumns(Buffer.alloc(0));
    if (this.tupleBuffers.length === 0) {
      const c = this.probe.capacity();
      // allocated, not written: only the pages a read fills become resident
      const bytes = (c.tuples + c.dropTuples) * LAYOUT.tupleRecSize;
      this.tupleBuffers = [Buffer.allocUnsafeSlow(bytes), Buffer.allocUnsafeSlow(bytes)];
    }
    const b = this.tupleBuffers[this.tupleBufferAt]!;
    this.tupleBufferAt ^= 1;
    const n = this.probe.readTupleDeltasInto(b);
    return decodeTupleColumns(b.subarray(0, n * LAYOUT.tupleRecSize));
  }

  /** Function tiers: the kernel's live entry count per port (confirmed minus
   * destroyed since load), by model/occupancy.ts portKey; undefined on the
   * other tiers, which have no destroy hook. */
  portEntries(): Map<string, number> | undefined {
    if (!this.probe || (this.probeTier !== 'fentry' && this.probeTier !== 'kprobe')) return undefined;
    const out = new Map<string, number>();
    for (const e of decodeEvents(this.probe.readEvents())) out.set(portKey(e), e.entries);
    return out;
  }

  /** The namespace --netns names, resolved at start. */
  targetRef(): NetnsRef | undefined {
    return this.target;
  }

  /** Namespaces watched right now. */
  watchedRefs(): NetnsRef[] {
    return [...this.watched.values()].map((w) => w.ref);
  }

  private closeAll(): void {
    for (const w of this.watched.values()) w.handle.close();
    this.watched.clear();
  }

  /** Detach everything. Safe to call twice. */
  close(): void {
    this.closeAll();
    this.probe?.close();
    this.tupleBuffers = [];
    this.probe = undefined;
    this.probeTier = undefined;
  }
}

/** --netns: is the namespace still there (same path, same inode)? */
function targetStillThere(t: NetnsRef): boolean {
  try {
    return statSync(t.path).ino === t.inode;
  } catch {
    return false;
  }
}
