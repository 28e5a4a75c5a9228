/**
 * One occupancy census: every entry counted, per namespace, port and source
 * address, by the in-kernel hash walk where the kernel permits (which also
 * measures the chains), else by one ctnetlink dump per namespace. Runs
 * synchronously: `ctop snapshot` calls it once at the window's end, the live
 * screen's background thread (occupancyWorker.ts) calls it repeatedly.
 */
import { readFileSync } from 'node:fs';
import { describeError, isNativeError } from '../errors.js';
import { readNetfilterSysctl } from './sysctl.js';
import { loadAddon, type NativeNetns } from '../native/addon.js';
import { reduceCensus, HELD_SOURCES_PER_NS, type OccupancyCensus } from '../model/occupancy.js';
import { TableWalker, type Locate } from './hashWalk.js';
import { scanNamespaces, type NetnsRef } from './netnsScan.js';

/** distinct (namespace, direction, address) keys the walk counts before overflow */
const MAX_ADDRS = 65_536;

export interface OccupancyCensusOptions {
  /** census of this namespace only (its inode and path); the hash figures stay global */
  target?: NetnsRef;
  /** 'ctnetlink' forces the dump (no chain measurement) */
  method: 'auto' | 'ctnetlink';
  /** 'entry': find the table from an entry, not kallsyms (tests) */
  locate?: Locate;
}


/** CPU time this thread has used, in ms (/proc/thread-self/schedstat: nanoseconds on a CPU). */
export function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** Keeps what one census learnt for the next: the loaded walk programs and where the
 * hash is (TableWalker), or why the walk failed. */
export class OccupancyCounter {
  private readonly walker: TableWalker;
  /** after the walk failed once, why: the dump is used from then on */
  private walkRefused: string | undefined;

  constructor(private readonly o: OccupancyCensusOptions) {
    this.walker = new TableWalker({ maxAddrs: MAX_ADDRS, locate: o.locate });
  }

  /** Unloads the walk programs. */
  close(): void {
    this.walker.close();
  }

  take(): OccupancyCensus {
    const cpu0 = threadCpuMs();
    const t0 = performance.now();
    const refs = scanNamespaces();
    const target = this.o.target;
    if (target && !refs.some((r) => r.inode === target.inode)) refs.push(target);
    const addon = loadAddon();
    // every namespace's count: the hash is shared, the walk is sized by it
    let hashEntries = 0;
    const handles: { ref: NetnsRef; handle: NativeNetns }[] = [];
    try {
      for (const ref of refs) {
        const handle = openNetns(addon, ref);
        if (!handle) continue;
        handles.push({ ref, handle });
        hashEntries += handle.table().count;
      }
      let out: Omit<OccupancyCensus, 'cpuMs' | 'wallMs' | 'takenAt' | 'buckets' | 'hashEntries'> | undefined;
      let walkFallbackReason = this.o.method === 'ctnetlink' ? 'forced with the ctnetlink method' : this.walkRefused;
      if (walkFallbackReason === undefined) {
        // one thread: the budget is this thread's CPU time (threadCpuMs), and a background census has no hurry
        const w = this.walker.walk({ census: true, addrs: true, top: HELD_SOURCES_PER_NS, maxAddrs: MAX_ADDRS, hashEntries, threads: 1 });
        if (w.result && w.census) {
          const keep = this.o.target ? w.census.filter((x) => x.netns === this.o.target!.inode) : w.census;
          out = {
            method: 'bpf-hash-walk',
            namespaces: keep.map((x) => ({ inode: x.netns, ...reduceCensus(x.census) })),
            walk: w.result,
          };
        } else {
          // a kernel that refuses the walk once refuses it every time: do not pay for trying again
          walkFallbackReason = this.walkRefused = w.reason ?? 'the hash walk returned no census';
          this.walker.close();
        }
      }
      if (!out) {
        const wanted = this.o.target ? handles.filter((h) => h.ref.inode === this.o.target!.inode) : handles;
        out = {
          method: 'ctnetlink-dump',
          fallbackReason: walkFallbackReason,
          namespaces: wanted.map(({ ref, handle }) => ({ inode: ref.inode, ...reduceCensus(handle.census({ maxAddrs: MAX_ADDRS, top: HELD_SOURCES_PER_NS })) })),
          walk: null,
          walkFallbackReason,
        };
      }
      return {
        ...out,
        takenAt: new Date().toISOString(),
        buckets: readNetfilterSysctl('nf_conntrack_buckets', 0),
        hashEntries,
        cpuMs: threadCpuMs() - cpu0,
        wallMs: performance.now() - t0,
      };
    } finally {
      for (const h of handles) h.handle.close();
    }
  }
}

function openNetns(addon: ReturnType<typeof loadAddon>, ref: NetnsRef): NativeNetns | undefined {
  try {
    return new addon.Netns(ref.path, -1);
  } catch (e) {
    // a namespace that vanished since the scan holds nothing
    if (isNativeError(e) && e.errno === 2) return undefined;
    throw new Error(`cannot open a ctnetlink socket in ${ref.name}: ${describeError(e)}`);
  }
}
