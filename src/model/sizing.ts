/**
 * Conntrack table sizing: the kernel's default formula and the figures a
 * sizing table needs. Pure: no I/O.
 *
 * The kernel's default formula (Documentation/networking/nf_conntrack-sysctl.rst
 * and nf_conntrack_init_start()): one hash bucket per 16 KiB of RAM, divided
 * by the size of a list head relative to 32 bits, and nf_conntrack_max equal
 * to the bucket count:
 *
 *   default max = RAM / 16384 / (word size / 32)      (64 GiB, 64-bit: 2,097,152)
 *
 * Kernels clamp the automatic bucket count (recent ones to 1024…262144), and
 * distributions and container runtimes often set the sysctl themselves, so
 * this is the formula's figure, labelled as such, not a promise about a host.
 */

const BYTES_PER_BUCKET_UNIT = 16384;

/** The kernel's default formula: RAM/16384/(word size/32). */
export function kernelDefaultMax(memBytes: number, wordBits: 32 | 64 = 64): number {
  if (!Number.isFinite(memBytes) || memBytes <= 0) return 0;
  return Math.floor(memBytes / BYTES_PER_BUCKET_UNIT / (wordBits / 32));
}

export interface SizingRow {
  /** What the row describes, e.g. "this host (16 GiB)" or "64 GiB". */
  label: string;
  memBytes: number;
  /** The kernel's default formula for that RAM. */
  defaultMax: number;
  /** The recording's peak entry count as a share of that default (0 when unknown). */
  peakFillOfDefault: number;
}

export interface SizingInput {
  /** nf_conntrack_max and nf_conntrack_buckets as recorded. */
  max: number;
  buckets: number;
  /** Latest and peak entry count of the fullest namespace. */
  count: number;
  peakCount: number;
  /** RAM and word size of the recording host, when the recording says. */
  memTotalBytes?: number;
  wordBits?: 32 | 64;
}

export interface Sizing {
  max: number;
  buckets: number;
  count: number;
  peakCount: number;
  fillRatio: number;
  peakFillRatio: number;
  /** Average entries per bucket at the peak: long chains cost lookups. */
  peakEntriesPerBucket: number;
  /** The formula's figure for the recording host's RAM, if known. */
  hostDefaultMax?: number;
  /** The formula for common RAM sizes, with the peak count set against each. */
  rows: SizingRow[];
}

const GiB = 1024 ** 3;
const REFERENCE_RAM_GIB = [1, 4, 16, 64, 256];

function gib(bytes: number): string {
  const g = bytes / GiB;
  return `${Number.isInteger(g) ? g : g.toFixed(1)} GiB`;
}

export function sizing(i: SizingInput): Sizing {
  const word = i.wordBits ?? 64;
  const ratio = (n: number, d: number): number => (d > 0 ? n / d : 0);
  const row = (label: string, memBytes: number): SizingRow => {
    const defaultMax = kernelDefaultMax(memBytes, word);
    return { label, memBytes, defaultMax, peakFillOfDefault: ratio(i.peakCount, defaultMax) };
  };
  const rows: SizingRow[] = [];
  if (i.memTotalBytes !== undefined && i.memTotalBytes > 0) rows.push(row(`recording host (${gib(i.memTotalBytes)})`, i.memTotalBytes));
  for (const g of REFERENCE_RAM_GIB) rows.push(row(`${g} GiB`, g * GiB));
  return {
    max: i.max,
    buckets: i.buckets,
    count: i.count,
    peakCount: i.peakCount,
    fillRatio: ratio(i.count, i.max),
    peakFillRatio: ratio(i.peakCount, i.max),
    peakEntriesPerBucket: ratio(i.peakCount, i.buckets),
    ...(i.memTotalBytes !== undefined && i.memTotalBytes > 0 ? { hostDefaultMax: kernelDefaultMax(i.memTotalBytes, word) } : {}),
    rows,
  };
}
