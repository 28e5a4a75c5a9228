/**
 * Sizing advice: the limit, the hash size and the timeouts, kernel-aware, with
 * what each setting costs in memory. Pure: callers pass /proc figures.
 *
 * Kernel facts:
 * - Theoretical maximum (the classic formula, Documentation/networking/
 *   nf_conntrack-sysctl.rst and the conntrack-tools docs):
 *     RAM / 16384 / (word size / 32)        64 GiB, 64-bit: 2,097,152
 *   (model/sizing.ts kernelDefaultMax).
 * - Boot defaults, nf_conntrack_init_start():
 *   before 5.15: buckets = RAM/16384/sizeof(hlist_head), 16384 above 1 GiB,
 *     65536 above 4 GiB, at least 32; nf_conntrack_max = 4 x buckets.
 *   5.15 and later (commit d532bcd0b269, "sanitize table size default
 *     settings"): buckets = RAM/16384/sizeof(hlist_head), 65536 above 1 GiB,
 *     262144 above 4 GiB on 64-bit, at least 1024; nf_conntrack_max = buckets.
 * - Every entry sits in the hash twice (original and reply tuple), so buckets
 *   between max/8 and max/2 keep average chains between 4 and 16 nodes.
 *   A bucket is one hlist_nulls_head: one pointer (word size / 8 bytes).
 * - An entry costs one nf_conntrack slab object (its size is in
 *   /proc/slabinfo), plus extensions allocated separately.
 */
import { LINGERING_STATES, type LingeringState } from '../model/conntrack.js';
import { kernelDefaultMax } from '../model/sizing.js';
import { countAtMost } from '../model/remaining.js';
import { ratio } from '../model/numbers.js';

export interface KernelVersion {
  major: number;
  minor: number;
}

export function parseKernelRelease(release: string): KernelVersion | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : null;
}

function atLeast(v: KernelVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

const GiB = 1024 ** 3;

export interface KernelDefaults {
  buckets: number;
  max: number;
  /** Which rule produced them. */
  rule: '5.15+' | 'before 5.15';
}

/** What nf_conntrack_init_start() picks on a kernel of this version with this RAM. */
export function kernelDefaults(memBytes: number, wordBits: 32 | 64, v: KernelVersion): KernelDefaults {
  const hlistBytes = wordBits / 8;
  let buckets = Math.floor(memBytes / 16384 / hlistBytes);
  if (atLeast(v, 5, 15)) {
    if (wordBits === 64 && memBytes > 4 * GiB) buckets = 262144;
    else if (memBytes > GiB) buckets = 65536;
    buckets = Math.max(1024, buckets);
    return { buckets, max: buckets, rule: '5.15+' };
  }
  if (memBytes > 4 * GiB) buckets = 65536;
  else if (memBytes > GiB) buckets = 16384;
  buckets = Math.max(32, buckets);
  return { buckets, max: 4 * buckets, rule: 'before 5.15' };
}


/** Shorter values operators commonly use; established stays long enough for idle keep-alive peers. */
const SUGGESTED_TIMEOUT_S: Record<LingeringState, number> = {
  established: 86400,
  time_wait: 30,
  close_wait: 30,
  fin_wait: 30,
};

export interface SizingAdviceInput {
  memBytes: number;
  wordBits: 32 | 64;
  kernelRelease: string;
  max: number;
  buckets: number;
  /** Entries in the fullest namespace now (or the peak a recording saw). */
  count: number;
  /** Bytes per entry: the nf_conntrack slab object size; 0 when unknown. */
  entryBytes: number;
  /** Current nf_conntrack_tcp_timeout_<state> in seconds. */
  timeoutsS: Partial<Record<LingeringState, number>>;
  /** Seconds left on each tcp entry, by state: exact, where wouldFree needs no range; absent otherwise (the census gives remainingHistogramByState). */
  entryRemainingSByState?: Partial<Record<LingeringState, number[]>>;
  /** TCP entries per state from the native census. */
  entriesByState?: Partial<Record<LingeringState, number>>;
  /** Seconds left on tcp entries by state as the native census gives them: a histogram, 4 slots per power of two (model/remaining.ts). */
  remainingHistogramByState?: Partial<Record<LingeringState, number[]>>;
  /** Why remainingHistogramByState is absent although a census ran: said in the output, never guessed. */
  remainingUnavailable?: string;
}

export interface TimeoutAdvice {
  state: LingeringState;
  sysctl: string;
  currentS: number;
  suggestedS: number;
  /** Entries that are older than the suggested timeout now (would be freed at once); null without a census.
   * From a histogram census: the entries certainly freed (a lower bound), with wouldFreeAtMost the upper one. */
  wouldFree: number | null;
  /** From a histogram census: entries possibly freed (the slot that straddles the cut counts whole). */
  wouldFreeAtMost?: number;
  /** Entries in this state now; null without a census. */
  entries: number | null;
  /** Why wouldFree is null although a census ran (the census did not read entry timeouts). */
  wouldFreeUnavailable?: string;
}

export interface SizingAdvice {
  theoreticalMax: number;
  kernelDefaults: KernelDefaults | null;
  current: { max: number; buckets: number; count: number; fillRatio: number; entriesPerBucket: number };
  recommended: { max: number; buckets: number; bucketRange: [number, number]; reason: string };
  memory: {
    entryBytes: number;
    bucketBytes: number;
    /** Worst case: the table full at max, plus the hash. */
    currentBytes: number;
    recommendedBytes: number;
  };
  timeouts: TimeoutAdvice[];
  sysctlLines: string[];
  sysctlDFile: string;
  hashsize: { sysfs: string; modprobe: string };
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function adviseSizing(i: SizingAdviceInput): SizingAdvice {
  const theoreticalMax = kernelDefaultMax(i.memBytes, i.wordBits);
  const v = parseKernelRelease(i.kernelRelease);
  const defaults = v ? kernelDefaults(i.memBytes, i.wordBits, v) : null;
  const fill = ratio(i.count, i.max);
  // Room for twice the current count (a full table drops packets; headroom
  // absorbs bursts), never below the current limit, never above the formula's
  // maximum, which is what the RAM is meant to afford.
  let max = i.max;
  let reason = `fill ${(fill * 100).toFixed(1)}% leaves headroom: keep nf_conntrack_max`;
  if (fill > 0.5) {
    max = Math.max(i.max, nextPow2(i.count * 2));
    reason = `fill ${(fill * 100).toFixed(1)}%: double the count for headroom`;
    if (theoreticalMax > 0 && max > theoreticalMax) {
      max = Math.max(i.max, theoreticalMax);
      reason += `, capped at the RAM formula's ${theoreticalMax}; past that exempt ports (NOTRACK) or shorten timeouts instead`;
    }
  }
  const bucketRange: [number, number] = [Math.max(1, Math.floor(max / 8)), Math.max(1, Math.floor(max / 2))];
  // Keep the current hash unless it is below the range (resizing rehashes
  // every entry; more buckets than max/2 only cost memory).
  const buckets = i.buckets >= bucketRange[0] ? i.buckets : nextPow2(bucketRange[0]);
  if (buckets > bucketRange[1]) reason += '; buckets above max/2 only cost memory (8 B each), keep them';
  else if (buckets !== i.buckets) reason += `; raise buckets into the range (${i.buckets} gives chains of ${Math.round((2 * max) / Math.max(1, i.buckets))} at a full table)`;
  const bucketBytes = i.wordBits / 8;
  const cost = (m: number, b: number): number => m * i.entryBytes + b * bucketBytes;
  const timeouts: TimeoutAdvice[] = [];
  for (const state of LINGERING_STATES) {
    const currentS = i.timeoutsS[state];
    if (currentS === undefined) continue;
    const suggestedS = Math.min(currentS, SUGGESTED_TIMEOUT_S[state]);
    // With a census, a state nobody is in has zero entries (not unknown).
    const remaining = i.entryRemainingSByState ? (i.entryRemainingSByState[state] ?? []) : undefined;
    // An entry with r seconds left under timeout T was last refreshed T - r
    // seconds ago; with timeout T' it would already have expired if T - r >= T'.
    let wouldFree = remaining ? remaining.filter((r) => currentS - r >= suggestedS).length : null;
    let wouldFreeAtMost: number | undefined;
    const hist = !remaining && i.remainingHistogramByState ? (i.remainingHistogramByState[state] ?? []) : undefined;
    if (hist) {
      // freed at once: r <= currentS - suggestedS seconds left
      const b = countAtMost(hist, currentS - suggestedS);
      wouldFree = b.atLeast;
      wouldFreeAtMost = b.atMost;
    }
    const entries = remaining ? remaining.length : i.entriesByState ? (i.entriesByState[state] ?? 0) : hist ? hist.reduce((a, n) => a + n, 0) : null;
    timeouts.push({
      state,
      sysctl: `net.netfilter.nf_conntrack_tcp_timeout_${state}`,
      currentS,
      suggestedS,
      wouldFree,
      entries,
      ...(wouldFreeAtMost !== undefined ? { wouldFreeAtMost } : {}),
      ...(wouldFree === null && i.remainingUnavailable ? { wouldFreeUnavailable: i.remainingUnavailable } : {}),
    });
  }
  const sysctlLines = [`net.netfilter.nf_conntrack_max = ${max}`, `net.netfilter.nf_conntrack_buckets = ${buckets}`];
  for (const t of timeouts) if (t.suggestedS < t.currentS) sysctlLines.push(`${t.sysctl} = ${t.suggestedS}`);
  return {
    theoreticalMax,
    kernelDefaults: defaults,
    current: { max: i.max, buckets: i.buckets, count: i.count, fillRatio: Math.round(fill * 10000) / 10000, entriesPerBucket: Math.round(ratio(i.count, i.buckets) * 10000) / 10000 },
    recommended: { max, buckets, bucketRange, reason },
    memory: { entryBytes: i.entryBytes, bucketBytes, currentBytes: cost(i.max, i.buckets), recommendedBytes: cost(max, buckets) },
    timeouts,
    sysctlLines,
    sysctlDFile: ['# /etc/sysctl.d/90-conntrack.conf (written by ctop advise)', ...sysctlLines, ''].join('\n'),
    hashsize: {
      sysfs: `echo ${buckets} > /sys/module/nf_conntrack/parameters/hashsize`,
      modprobe: `options nf_conntrack hashsize=${buckets}   # /etc/modprobe.d/nf_conntrack.conf, for a modular nf_conntrack at boot`,
    },
  };
}
