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
import type { CtCpuStat } from '../model/sample.js';

export interface ProbeOptions {
  maxPorts: number;
  maxTuples: number;
  maxDropTuples: number;
  /** Network namespace inode to restrict counting to; 0 for all. */
  targetNetns: number;
  /** Which programs to load; function tiers also attach here, all or nothing. */
  tier: 'fentry' | 'kprobe' | 'netfilter';
}

export interface NativeProbe {
  attachDrops(): void;
  seedDrops(netns: number, perCpuDrops: number[]): void;
  nfProgFd(): number;
  readPorts(): Buffer;
  /** Tuple records (insert and drop maps joined) whose counts grew since the
   * previous call, with the growth as counts; the first call: since load. */
  readTupleDeltas(): Buffer;
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
  inode(): number;
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
  /** mode 0: the table from a node; mode 1: read the table pointer at a kallsyms address. */
  locate(addr: bigint, mode: 0 | 1): { base: bigint; bucket: number };
  /** Walk every bucket, perRun per BPF run; with census, count the entries (and with addrs their addresses). */
  chains(base: bigint, size: number, perRun: number, census: boolean, addrs: boolean): {
    buckets: number;
    nodes: number;
    longest: number;
    rewalked: number;
    inconsistent: number;
    runs: number;
    censusEntries: number;
    /** the longest single BPF run */
    maxRunMs: number;
    /** sizeof(struct nf_conn), CO-RE relocated against the kernel's BTF */
    nfConnBytes: number;
    /** buckets per chain length; the last slot is "that or more" */
    hist: number[];
    lastNonEmpty: number;
  };
  /** Delete the entry capture()'s datagram made (by its exact tuple). */
  forgetPoke(): void;
  /** What the census counted, per namespace inode. */
  readCensus(top: number): { netns: number; census: CensusCounts }[];
  close(): void;
}

export interface Addon {
  Walker: new (opts: { maxGroups: number; maxAddrs: number }) => NativeWalker;
  Probe: new (opts: ProbeOptions) => NativeProbe;
  /** progFd < 0: ctnetlink socket only, no netfilter links. */
  Netns: new (path: string, progFd: number) => NativeNetns;
  layout: NativeLayout;
  /** bpf/ctop.h CTOP_DEFAULT_MAX_*: the map sizes the kernel object declares */
  mapDefaults: { maxPorts: number; maxTuples: number; maxDropTuples: number };
  /** sizeof(struct name) in the running kernel, from its BTF. */
  btfStructSize(name: string): number;
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
  cached = addon;
  return addon;
}
