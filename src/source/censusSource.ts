/**
 * Reads what a census needs from the kernel: one ctnetlink dump per
 * namespace (counted in C by the addon), every namespace's entry count (the
 * hash is one table shared by all of them), the chain statistics before and
 * after a short window, the entry size from BTF and the slab cache.
 */
import { readFileSync } from 'node:fs';
import { CtopError, ExitCode, describeError } from '../errors.js';
import { loadAddon, type NativeNetns } from '../native/addon.js';
import { type CensusCounts } from '../model/censusCounts.js';
import type { WalkOptions, WalkOutcome } from './hashWalk.js';
import { parseSlabinfo, type CensusInput, type SlabInfo, type WalkResult } from '../model/census.js';
import { resolveNetns, scanNamespaces, type NetnsRef } from './netnsScan.js';
import { sumCpuStats } from '../model/sample.js';
import { sleepMs } from '../util/signals.js';
import { readNetfilterSysctl } from './sysctl.js';

export interface CensusOptions {
  /** --netns NAME|PATH: census of this namespace only (the hash figures stay global) */
  netns?: string;
  /** addresses kept per direction in the output */
  top: number;
  /** distinct addresses counted before overflow */
  maxAddrs: number;
  /** 'auto': count entries during the in-kernel walk where it runs, else a ctnetlink dump; 'ctnetlink': force the dump */
  occupancy: 'auto' | 'ctnetlink';
  /** 'auto': walk the hash where the kernel permits, else the model; 'model': force the model */
  chains: 'auto' | 'model';
  /** window over which search_restart / chaintoolong rates are taken */
  rateWindowMs: number;
  /** threads the in-kernel walk runs on at once (0 or absent: every online CPU) */
  walkThreads?: number;
  /** the in-kernel walk; tests pass locate 'entry' to ignore kallsyms */
  walker?: (o: WalkOptions) => WalkOutcome;
}

function readSlab(pageBytes: number): SlabInfo | null {
  try {
    // the conntrack entries' own cache (kmem_cache_create("nf_conntrack", ...))
    return parseSlabinfo(readFileSync('/proc/slabinfo', 'utf8'), 'nf_conntrack', pageBytes);
  } catch {
    return null;
  }
}

function chainStats(handles: NativeNetns[]): { searchRestart: number; chainTooLong: number } {
  let searchRestart = 0;
  let chainTooLong = 0;
  for (const h of handles) {
    const s = sumCpuStats(h.cpuStats());
    searchRestart += s.searchRestart;
    chainTooLong += s.chainTooLong;
  }
  return { searchRestart, chainTooLong };
}

export async function takeCensus(o: CensusOptions): Promise<CensusInput> {
  const addon = loadAddon();
  const target = o.netns ? resolveNetns(o.netns) : undefined;
  const all = scanNamespaces();
  if (target && !all.some((r) => r.inode === target.inode)) all.push(target);
  const open: { ref: NetnsRef; handle: NativeNetns }[] = [];
  const errors: string[] = [];
  try {
    for (const ref of all) {
      try {
        open.push({ ref, handle: new addon.Netns(ref.path, -1) });
      } catch (e) {
        if (target && ref.inode === target.inode) {
          throw new CtopError(`cannot open a ctnetlink socket in ${ref.name}: ${describeError(e)}`, 'run ctop as root', ExitCode.privileges);
        }
        errors.push(`${ref.name}: ${describeError(e)}`); // the namespace vanished, most likely
      }
    }
    if (open.length === 0) {
      throw new CtopError(`could not open any network namespace (${errors.join('; ') || 'none found'})`, 'run ctop as root', ExitCode.privileges);
    }
    const handles = open.map((x) => x.handle);
    const nameOf = (inode: number) => open.find((x) => x.ref.inode === inode)?.ref.name ?? `netns ${inode}`;
    const ownerOf = (inode: number) => {
      const owner = open.find((x) => x.ref.inode === inode)?.ref.owner;
      return owner ? { owner } : {};
    };
    const windowStart = performance.now();
    const before = chainStats(handles);
    const hashEntriesBefore = handles.reduce((a, h) => a + h.table().count, 0);

    let walk: WalkResult | null = null;
    let walkFallbackReason: string | undefined;
    let occupancyFallbackReason: string | undefined;
    let namespaces: CensusInput['namespaces'] | undefined;
    let occupancyMs = 0;
    let entryBytes: number | null = null;
    const wantWalkCensus = o.occupancy === 'auto';
    if (o.chains === 'auto' || wantWalkCensus) {
      const t0 = performance.now();
      const w = o.walker
        ? o.walker({ census: wantWalkCensus, addrs: true, top: o.top, maxAddrs: o.maxAddrs, hashEntries: hashEntriesBefore, threads: o.walkThreads ?? 0 })
        : { result: null, reason: 'no hash walker on this build' };
      if (w.result && o.chains === 'auto') walk = w.result;
      if (!w.result) walkFallbackReason = w.reason;
      entryBytes = w.nfConnBytes ?? null;
      if (w.result && w.census) {
        occupancyMs = performance.now() - t0;
        namespaces = w.census
          .filter((x) => !target || x.netns === target.inode)
          .map((x) => ({ inode: x.netns, name: nameOf(x.netns), ...ownerOf(x.netns), census: x.census }));
        if (target && namespaces.length === 0) namespaces.push({ inode: target.inode, name: target.name, ...ownerOf(target.inode), census: emptyCensus() });
      } else if (wantWalkCensus) {
        occupancyFallbackReason = w.reason;
      }
    }
    if (o.chains === 'model') walkFallbackReason = 'forced with --chains model';
    if (o.occupancy === 'ctnetlink') occupancyFallbackReason = 'forced with --occupancy ctnetlink';
    const occupancy: CensusInput['occupancy'] = namespaces ? 'bpf-hash-walk' : 'ctnetlink-dump';
    if (!namespaces) {
      const chosen = target ? open.filter((x) => x.ref.inode === target.inode) : open;
      const t0 = performance.now();
      namespaces = [];
      for (const { ref, handle } of chosen) {
        const census = handle.census({ maxAddrs: o.maxAddrs, top: o.top });
        if (census.entries > 0 || target) namespaces.push({ inode: ref.inode, name: ref.name, ...(ref.owner ? { owner: ref.owner } : {}), census });
      }
      occupancyMs = performance.now() - t0;
    }
    const hashEntriesAfter = handles.reduce((a, h) => a + h.table().count, 0);
    const left = o.rateWindowMs - (performance.now() - windowStart);
    if (left > 0) await sleepMs(left);
    const after = chainStats(handles);
    const windowMs = performance.now() - windowStart;
    if (entryBytes === null) {
      try {
        entryBytes = addon.btfStructSize('nf_conn');
      } catch {
        entryBytes = null; // no BTF: the report says "unavailable"
      }
    }
    return {
      takenAt: new Date().toISOString(),
      occupancy,
      occupancyFallbackReason,
      occupancyMs,
      namespaces,
      buckets: readNetfilterSysctl('nf_conntrack_buckets', 0),
      hashEntries: hashEntriesAfter,
      hashEntriesBefore,
      entryBytes,
      slab: readSlab(addon.pageBytes),
      walk,
      walkFallbackReason,
      stats: { windowMs, before, after },
    };
  } finally {
    for (const x of open) x.handle.close();
  }
}

function emptyCensus(): CensusCounts {
  return {
    entries: 0, assured: 0, unreplied: 0, parseErrors: 0, groupOverflow: 0, groups: [], srcs: [], dsts: [],
    distinctSrcs: 0, distinctDsts: 0, srcOverflow: 0, dstOverflow: 0, tcpRemaining: [],
  };
}
