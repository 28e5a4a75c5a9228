/**
 * Chain lengths, measured: drives the walk of the conntrack hash
 * (bpf/walk.bpf.c through the addon's Walker). The table's address comes
 * from /proc/kallsyms where the kernel lists data symbols
 * (CONFIG_KALLSYMS_ALL); otherwise from one confirmed entry: caught on
 * tp_btf/net_dev_queue from live traffic, or, on a quiet host, from one
 * datagram ctop sends inside a private namespace it creates for the purpose
 * (ctop-census-PID, conntrack on there only; that one entry is deleted by its
 * tuple and the namespace removed before the walk, so it adds nothing).
 */
import { readFileSync } from 'node:fs';
import { describeError } from '../errors.js';
import { loadAddon, type NativeWalker } from '../native/addon.js';
import type { CensusCounts } from '../model/censusCounts.js';
import type { WalkResult } from '../model/census.js';
import { nsExec } from '../util/nsExec.js';
import { readNetfilterSysctl } from './sysctl.js';
import { onTermination } from '../util/signals.js';
import { MAX_GROUPS, takeStartedWalk } from './walkStart.js';

/** Work per BPF run, in chain nodes: at up to 0.8 µs per node (census reads
 * and map updates, measured on the 2-core VM) about 3 ms, so that one run
 * never holds a CPU long enough to matter to packet processing. A run covers
 * as many buckets as hold that many nodes at the table's load factor. */
const NODES_PER_RUN = 4096;
const MAX_BUCKETS_PER_RUN = 16_384;
const MIN_BUCKETS_PER_RUN = 64;

/** Buckets per run for a table of `nodes` chain nodes in `buckets` buckets. */
export function bucketsPerRun(nodes: number, buckets: number): number {
  const load = buckets > 0 ? nodes / buckets : 0;
  const per = Math.floor(NODES_PER_RUN / Math.max(1, load));
  return Math.min(MAX_BUCKETS_PER_RUN, Math.max(MIN_BUCKETS_PER_RUN, per));
}
/** How long to wait for live traffic to show a confirmed entry. */
const LIVE_WAIT_MS = 50;
const POKE_WAIT_MS = 1000;
/** More inconsistent buckets than this share means the table was not found right. */
const MAX_INCONSISTENT_RATIO = 0.01;

/** The address of a data symbol in /proc/kallsyms, where listed (0 when hidden by kptr_restrict). */
export function kallsymsAddress(text: string, name: string): bigint | undefined {
  const m = new RegExp(`^([0-9a-f]+) [bBdD] ${name}$`, 'm').exec(text);
  if (!m) return undefined;
  const a = BigInt(`0x${m[1]}`);
  return a === 0n ? undefined : a;
}

function run(argv: string[], input?: string): void {
  nsExec(argv[0]!, argv.slice(1), { input, timeoutMs: 10_000 });
}

/** One confirmed entry from a namespace of our own, made and removed here. */
function pokePrivate(w: NativeWalker, locate: (node: bigint) => bigint): bigint {
  const name = `ctop-census-${process.pid}`;
  // Ctrl-C or SIGTERM while the namespace exists must not leave it behind (a finally does not run then)
  const stopListening = onTermination(() => run(['ip', 'netns', 'del', name]));
  run(['ip', 'netns', 'add', name]);
  try {
    run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    // any `ct` expression turns conntrack on in this namespace only
    run(['ip', 'netns', 'exec', name, 'nft', '-f', '-'], 'table ip ctop_census {\n  chain out { type filter hook output priority 0; ct state new counter; }\n}\n');
    const node = w.capture(`/run/netns/${name}`, POKE_WAIT_MS);
    if (node === 0n) throw new Error('the datagram sent in a private namespace was not seen on net_dev_queue');
    const base = locate(node);
    // leave nothing behind in the table the walk is about to count: delete
    // that one entry by its tuple (a flush would scan the whole global hash)
    w.forgetPoke();
    return base;
  } finally {
    stopListening();
    try { run(['ip', 'netns', 'del', name]); } catch { /* already gone */ }
  }
}

/** How the table may be found (tests narrow it; see locateTable). */
export type Locate = 'auto' | 'entry' | 'capture';

/** CTOP_TEST_LOCATE=entry|capture: tests force a way of finding the table (locateTable). */
export function locateForTests(): Locate {
  const v = process.env.CTOP_TEST_LOCATE;
  return v === 'entry' || v === 'capture' ? v : 'auto';
}

/** CTOP_TEST_READS=probe-read: tests walk with bpf_probe_read_kernel, as kernels before 6.2 do,
 * where the plain-load walk would load. */
function probeReadForTests(): boolean {
  return process.env.CTOP_TEST_READS === 'probe-read';
}

/** CTOP_TEST_REWALK=all: tests walk every chain a second time alone, the path of a chain that
 * moved during the walk, which real traffic takes too rarely to test. */
function rewalkAllForTests(): boolean {
  return process.env.CTOP_TEST_REWALK === 'all';
}

export interface WalkOutcome {
  result: WalkResult | null;
  /** with opts.census: what the walk counted, per namespace inode */
  census?: { netns: number; census: CensusCounts }[];
  /** sizeof(struct nf_conn) as the walk programs were relocated for */
  nfConnBytes?: number;
  /** where the table was found: pass it back as `table` to skip finding it again */
  table?: TableLocation;
  reason?: string;
}

/** The hash table's address for a bucket count; valid until the table is resized. */
export interface TableLocation {
  base: bigint;
  size: number;
  locatedBy: WalkResult['locatedBy'];
}

export interface WalkOptions {
  /** count every entry during the walk (the in-kernel census) */
  census: boolean;
  /** and their addresses */
  addrs: boolean;
  /** address rows returned per namespace and direction */
  top: number;
  /** distinct (namespace, direction, address) keys, all namespaces together */
  maxAddrs: number;
  /** entries in the whole table now (every namespace's count): sizes the runs */
  hashEntries: number;
  /** 'entry': ignore kallsyms (tests use it to force the derivation); 'capture': ignore kallsyms
   * and the conntrack kfuncs (tests use it to prove the traffic-based ways) */
  locate?: Locate;
  /** a location an earlier walk found: used while the bucket count is unchanged, so a
   * repeated census (the live screen's) captures no entry and pokes no namespace */
  table?: TableLocation;
  /** threads the walk's runs are shared by (0 or absent: one per online CPU); a caller that
   * accounts its own thread's CPU time (the live screen's budget) passes 1 */
  threads?: number;
}

/**
 * The walk programs, loaded once, and where the table is: one instance serves
 * every census of a process (the live screen's thread takes one every few
 * seconds). The census maps are sized by maxAddrs when the programs load.
 */
export class TableWalker {
  private w: NativeWalker | undefined;
  private refused: string | undefined;
  private table: TableLocation | undefined;
  /** the programs came from a start that ran beside the command's start-up (walkStart.ts):
   * its steps' own times, and how long the command waited for them; reported by the first walk */
  private started: { loadMs: number; locateMs: number; waitMs: number } | undefined;
  /** that start already tried ctop's own entry, and the kernel refused it */
  private ownEntryRefused = false;
  /** the kernel refused an own entry made as the barrier after a walk (no conntrack kfuncs) */
  private barrierRefused = false;

  constructor(private readonly o: { maxAddrs: number; locate?: Locate }) {}

  walk(opts: WalkOptions): WalkOutcome {
    const addon = loadAddon();
    for (let attempt = 0; attempt < 2; attempt++) {
      const out = this.walkOnce(addon, opts);
      if (out === 'resized') continue;
      if (out.result) out.result.resizeRestarts = attempt;
      return out;
    }
    return { result: null, reason: 'the table was resized twice during the walk' };
  }

  close(): void {
    this.w?.close();
    this.w = undefined;
  }

  /**
   * Did a resize move entries while the walk ran? nf_conntrack_hash_resize() moves every entry
   * into the new table with nf_conntrack_generation (a seqcount) held odd, and only then
   * publishes the new table and its size. A walk that falls wholly inside that move finds the
   * moved entries gone from the old table, and the bucket count read after it is still the old
   * one. An entry made after the walk is the barrier: nf_conntrack_hash_check_insert() (the
   * conntrack kfuncs' insert) waits in read_seqcount_begin() while a move runs, so the table it
   * lands in is the new one if a move was under way at any time since the walk began. Without
   * the kfuncs (Linux < 6.0) only the bucket count after the walk is checked.
   */
  private resizedDuringWalk(w: NativeWalker, base: bigint): boolean {
    if (this.barrierRefused) return false;
    try {
      return w.locateOwn().base !== base;
    } catch {
      this.barrierRefused = true;
      return false;
    }
  }

  /** The loaded programs; undefined (with the reason kept) where the kernel refuses them. */
  private load(addon: ReturnType<typeof loadAddon>): NativeWalker | undefined {
    if (!this.w && this.refused === undefined) {
      const s = takeStartedWalk(this.o.maxAddrs, { probeRead: probeReadForTests(), rewalkAll: rewalkAllForTests() });
      try {
        if (s) {
          const j = s.start.join();
          this.started = { loadMs: j.loadMs, locateMs: j.locateMs, waitMs: j.waitMs };
          // throws the load's own error when the programs did not load
          this.w = new addon.Walker({ maxGroups: MAX_GROUPS, maxAddrs: s.maxAddrs }, s.start);
          if (j.table && this.o.locate !== 'capture') this.table = { base: j.table.base, size: s.buckets, locatedBy: 'own-entry' };
          else if (s.locateOwn) this.ownEntryRefused = true;
        } else {
          this.w = new addon.Walker({ maxGroups: MAX_GROUPS, maxAddrs: Math.max(2, this.o.maxAddrs), probeRead: probeReadForTests(), rewalkAll: rewalkAllForTests() });
        }
      } catch (e) {
        this.refused = `the kernel refused the hash-walk programs: ${describeError(e)}`;
      }
    }
    return this.w;
  }

  private walkOnce(addon: ReturnType<typeof loadAddon>, opts: WalkOptions): WalkOutcome | 'resized' {
    const tLoad = performance.now();
    const w = this.load(addon);
    if (!w) return { result: null, reason: this.refused };
    const loadMs = performance.now() - tLoad;
    const started = this.started;
    this.started = undefined;
    const size = readNetfilterSysctl('nf_conntrack_buckets');
    const tLocate = performance.now();
    const remembered = opts.table ?? this.table;
    let base: bigint;
    let locatedBy: WalkResult['locatedBy'];
    if (remembered && remembered.size === size) {
      ({ base, locatedBy } = remembered);
    } else {
      try {
        ({ base, locatedBy } = locateTable(w, this.o.locate ?? opts.locate, this.ownEntryRefused));
      } catch (e) {
        return { result: null, reason: `cannot find the conntrack hash: ${describeError(e)}` };
      }
    }
    const locateMs = performance.now() - tLocate;
    const t0 = performance.now();
    const perRun = bucketsPerRun(2 * opts.hashEntries, size);
    const r = w.chains(base, size, perRun, opts.census, opts.census && opts.addrs, opts.threads ?? 0);
    const t1 = performance.now();
    const census = opts.census ? w.readCensus(opts.top) : undefined;
    const phases = {
      loadMs: started ? started.loadMs : loadMs,
      locateMs: locateMs + (started?.locateMs ?? 0),
      walkMs: t1 - t0,
      readMs: performance.now() - t1,
      ...(started ? { startWaitMs: started.waitMs } : {}),
    };
    // a resize (nf_conntrack_buckets written) replaces the table: find it again
    if (this.resizedDuringWalk(w, base) || readNetfilterSysctl('nf_conntrack_buckets') !== size) {
      this.table = undefined;
      return 'resized';
    }
    if (r.inconsistent > size * MAX_INCONSISTENT_RATIO) {
      // a remembered location that no longer fits: find the table again
      if (remembered) {
        this.table = undefined;
        return this.walkOnce(addon, { ...opts, table: undefined });
      }
      return { result: null, reason: `${r.inconsistent} of ${size} buckets did not end in their own marker: the table was not found right` };
    }
    this.table = { base, size, locatedBy };
    const hist = r.hist.slice(0, Math.max(r.lastNonEmpty + 1, 2));
    return {
      result: {
        buckets: r.buckets,
        histogram: hist,
        histogramLastIsOrMore: r.lastNonEmpty === r.hist.length - 1,
        nodes: r.nodes,
        longestChain: r.longest,
        rewalkedBuckets: r.rewalked,
        inconsistentBuckets: r.inconsistent,
        locatedBy,
        runs: r.runs,
        threads: r.threads,
        reads: r.directLoads ? 'direct' : 'probe-read',
        bucketsPerRun: perRun,
        maxRunMs: r.maxRunMs,
        walkMs: phases.walkMs,
        walkCpuMs: r.cpuMs,
        phasesMs: phases,
      },
      census,
      nfConnBytes: r.nfConnBytes || undefined,
      table: this.table,
    };
  }
}

/**
 * The table's address, the cheapest way the kernel allows: an entry of ctop's own made by the
 * conntrack kfuncs (Linux >= 6.0; no traffic, no rule, no subprocess: about 5 ms), else kallsyms
 * where it lists the symbol, else a confirmed entry of live traffic, else a datagram in a private
 * namespace. 'entry' skips kallsyms; 'capture' (tests) skips kallsyms and the kfuncs.
 */
function locateTable(w: NativeWalker, locate: Locate | undefined, ownEntryRefused = false): { base: bigint; locatedBy: WalkResult['locatedBy'] } {
  if (locate !== 'capture' && !ownEntryRefused) {
    try {
      return { base: w.locateOwn().base, locatedBy: 'own-entry' };
    } catch {
      // a kernel without the conntrack kfuncs: the other ways below
    }
  }
  let ksym: bigint | undefined;
  try {
    ksym = locate === 'entry' || locate === 'capture' ? undefined : kallsymsAddress(readFileSync('/proc/kallsyms', 'utf8'), 'nf_conntrack_hash');
  } catch {
    ksym = undefined;
  }
  if (ksym !== undefined) return { base: w.locate(ksym, 1).base, locatedBy: 'kallsyms' };
  const node = w.capture(null, LIVE_WAIT_MS);
  if (node !== 0n) return { base: w.locate(node, 0).base, locatedBy: 'live-entry' };
  return { base: pokePrivate(w, (n) => w.locate(n, 0).base), locatedBy: 'private-entry' };
}

/** One walk with programs loaded for it and unloaded after (a command's single census). */
export function hashWalker(opts: WalkOptions): WalkOutcome {
  const walker = new TableWalker({ maxAddrs: opts.maxAddrs, locate: opts.locate });
  try {
    return walker.walk(opts);
  } finally {
    walker.close();
  }
}
