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
  /** The per-tuple insert map, or with `drops` the per-tuple drop map. */
  readTuples(drops?: boolean): Buffer;
  readTotals(): number[];
  capacity(): { ports: number; tuples: number; dropTuples: number };
  /** BPF_PROG_TEST_RUN of the netfilter program on a crafted packet; returns its verdict (1 = NF_ACCEPT). */
  testRunNf(packet: Buffer, pf: number, hook: number): number;
  ncpus(): number;
  tier(): string;
  /** Function tiers: struct ctop_event_rec records (empty otherwise). */
  readEvents(): Buffer;
  close(): void;
}

export interface CtCpuStat {
  cpu: number;
  found: number;
  invalid: number;
  insert: number;
  insertFailed: number;
  drop: number;
  earlyDrop: number;
  error: number;
  searchRestart: number;
  clashResolve: number;
  chainTooLong: number;
}

export interface NativeNetns {
  inode(): number;
  links(): number;
  cpuStats(): CtCpuStat[];
  table(): { count: number; max: number };
  close(): void;
}

export interface Addon {
  Probe: new (opts: ProbeOptions) => NativeProbe;
  /** progFd < 0: ctnetlink socket only, no netfilter links. */
  Netns: new (path: string, progFd: number) => NativeNetns;
  layout: NativeLayout;
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
