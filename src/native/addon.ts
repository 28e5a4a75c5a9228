/**
 * The only module that loads the compiled addon (build/Release/ctop.node).
 * Everything else sees the typed interface below; tests of the UI and of pure
 * logic use a fake source instead and never load it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CtopError, ExitCode } from '../errors.js';
import { checkLayout, type NativeLayout } from './decode.js';
import type { CensusCounts } from '../model/censusCounts.js';
import { TIERS, type BpfTier, type CtCpuStat } from '../model/sample.js';

export interface ProbeOptions {
  maxPorts: number;
  maxTuples: number;
  maxDropTuples: number;
  /** Network namespace inode to restrict counting to; 0 for all. */
  targetNetns: number;
  /** 'auto': the native core's fallback, every tier best first until one
   * loads; a tier: that one only. Function tiers also attach here, all
   * programs or none. When no tier loads the constructor throws the last
   * refusal, with every refusal as its `refused`. */
  tier: 'auto' | BpfTier;
}

/** A tier the kernel refused: a native error (errors.ts) naming its tier. */
export interface NativeRefusal {
  code: 'ECTOP_NATIVE';
  tier: BpfTier;
  message: string;
  errno: number;
  step: string;
  log: string;
}

/** A program of the loaded tier and how it reaches its hook. */
export interface NativeProgram {
  name: string;
  /** its section (fentry/…, tp_btf/…), or where the netfilter program is linked */
  hook: string;
  /** load: attached with the tier; netns: one link per namespace (Netns); drops: by attachDrops() */
  attach: 'load' | 'netns' | 'drops';
  /** by the probe itself (for 'netns', count the namespaces' links instead) */
  attached: boolean;
  /** runs the kernel skipped since load: the program was already running on that CPU (a softirq interrupted it), so those events were not counted */
  skippedRuns: number;
}

export interface NativeProbe {
  tier(): BpfTier;
  /** The better tiers refused before this one loaded. */
  refused(): NativeRefusal[];
  programs(): NativeProgram[];
  attachDrops(): void;
  /** The drop program's baseline from the namespace's per-CPU drop statistic; before attachDrops(). */
  seedDrops(netns: NativeNetns): void;
  nfProgFd(): number;
  readPorts(): Buffer;
  /** Tuple records (insert and drop maps joined) whose counts grew since the
   * previous call, with the growth as counts; the first call: since load. */
  readTupleDeltas(): Buffer;
  /** As readTupleDeltas, into `target` (capacity().tuples + capacity().dropTuples records); returns the records written. */
  readTupleDeltasInto(target: Buffer): number;
  readTotals(): number[];
  capacity(): { ports: number; tuples: number; dropTuples: number };
  /** Keys in the per-port hash at the last readPorts(): what `capacity().ports`
   * bounds. Ports counted in the per-CPU slots are not in it. */
  portHashEntries(): number;
  /** BPF_PROG_TEST_RUN of the netfilter program on a crafted packet; returns its verdict (1 = NF_ACCEPT). */
  testRunNf(packet: Buffer, pf: number, hook: number): number;
  /** Function tiers: struct ctop_event_rec records (empty otherwise). */
  readEvents(): Buffer;
  close(): void;
}

export interface NativeNetns {
  links(): number;
  cpuStats(): CtCpuStat[];
  table(): { count: number; max: number };
  census(opts: { maxAddrs: number; top: number }): CensusCounts;
  close(): void;
}

/** The conntrack hash walk (bpf/walk.bpf.c). Addresses are bigints. */
export interface NativeWalker {
  /** One confirmed entry's original-direction node seen on net_dev_queue within waitMs
   * (0n: none); with a namespace path, first sends one datagram to 127.0.0.1:9 there. */
  capture(netnsPath: string | null, waitMs: number): bigint;
  /** The table from an entry of ctop's own, made by the conntrack kfuncs (Linux >= 6.0) in a
   * network namespace made for it and deleted before this returns. */
  locateOwn(): { base: bigint; bucket: number };
  /** mode 0: the table from a node; mode 1: read the table pointer at a kallsyms address. */
  locate(addr: bigint, mode: 0 | 1): { base: bigint; bucket: number };
  /** Walk every bucket, perRun per BPF run, the runs shared by `threads` threads (0: one per
   * online CPU); with census, count the entries (and with addrs their addresses). A census
   * walk starts from zero: one walker serves any number of censuses. */
  chains(base: bigint, size: number, perRun: number, census: boolean, addrs: boolean, threads: number): {
    buckets: number;
    nodes: number;
    longest: number;
    rewalked: number;
    inconsistent: number;
    runs: number;
    /** threads that ran the runs side by side */
    threads: number;
    censusEntries: number;
    /** the longest single BPF run */
    maxRunMs: number;
    /** CPU time of the walking threads over their runs, summed over the threads */
    cpuMs: number;
    /** sizeof(struct nf_conn), CO-RE relocated against the kernel's BTF */
    nfConnBytes: number;
    /** true: read with plain loads, several chains side by side (Linux >= 6.2); false: bpf_probe_read_kernel */
    directLoads: boolean;
    /** buckets per chain length; the last slot is "that or more" */
    hist: number[];
    lastNonEmpty: number;
  };
  /** Delete the entry capture()'s datagram made (by its exact tuple). */
  forgetPoke(): void;
  /** What the census counted, per namespace inode; reading empties the counts. */
  readCensus(top: number): { netns: number; census: CensusCounts }[];
  close(): void;
}

/** The walk programs loading (and, with locateOwn, the table being found from an entry of
 * ctop's own) on a native thread, beside whatever JavaScript runs meanwhile. */
export interface NativeWalkerStart {
  /** Waits for the thread. Each step's time is its own on its thread; waitMs is how long
   * this call blocked. The load's own error comes from `new Walker(opts, start)`. */
  join(): {
    loaded: boolean;
    loadMs: number;
    locateMs: number;
    waitMs: number;
    table: { base: bigint; bucket: number } | null;
    /** why the table was not found (a native error), when it was not */
    locateError: Error | null;
  };
  /** Waits for the thread and unloads what it loaded (nothing once a Walker took it). */
  close(): void;
}

export interface Addon {
  /** probeRead (tests): the bpf_probe_read_kernel walk, as on kernels before 6.2, where the plain-load walk would load */
  /** rewalkAll (tests): every chain walked a second time alone, as one that moved during the walk is */
  /** With a start: the programs it loaded (throws the load's error when they did not). */
  Walker: new (opts: { maxGroups: number; maxAddrs: number; probeRead?: boolean; rewalkAll?: boolean }, start?: NativeWalkerStart) => NativeWalker;
  WalkerStart: new (opts: { maxGroups: number; maxAddrs: number; locateOwn: boolean; probeRead?: boolean; rewalkAll?: boolean }) => NativeWalkerStart;
  Probe: new (opts: ProbeOptions) => NativeProbe;
  /** progFd < 0: ctnetlink socket only, no netfilter links. */
  Netns: new (path: string, progFd: number) => NativeNetns;
  layout: NativeLayout;
  /** bpf/ctop.h enum ctop_tier: the BPF tiers, best first (the core's fallback order) */
  tiers: BpfTier[];
  /** bpf/ctop.h CTOP_DEFAULT_MAX_*: the map sizes the kernel object declares */
  mapDefaults: { maxPorts: number; maxTuples: number; maxDropTuples: number };
  /** sizeof(struct name) in the running kernel, from its BTF. */
  btfStructSize(name: string): number;
  /** the kernel's page size (sysconf(_SC_PAGESIZE)) */
  pageBytes: number;
}

let cached: Addon | undefined;

function addonPath(): string {
  // dist/native/addon.js or src/native/addon.ts -> <root>/build/Release/ctop.node
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return join(root, 'build', 'Release', 'ctop.node');
}

export function loadAddon(): Addon {
  if (cached) return cached;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new CtopError(
      `the native addon is not built (${path} is missing)`,
      'run `bash scripts/setup.sh` (or `npm run build`) in the ctop checkout',
      ExitCode.failure,
    );
  }
  const require = createRequire(import.meta.url);
  const addon = require(path) as Addon;
  checkLayout(addon.layout);
  checkTiers(addon.tiers);
  cached = addon;
  return addon;
}

/** The tier names a recording or --tier may carry (model/sample.ts) are the
 * core's (bpf/ctop.h), in its order, then 'stats'. */
function checkTiers(native: readonly string[]): void {
  const want = TIERS.filter((t) => t !== 'stats');
  if (native.join(',') !== want.join(',')) {
    throw new CtopError(
      `the native addon's probe tiers differ from this build (${native.join(', ')} != ${want.join(', ')})`,
      'rebuild everything with `npm run build`',
    );
  }
}
