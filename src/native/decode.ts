/**
 * Decoders for the records native/core hands over, laid out as in
 * bpf/ctop.h (struct ctop_port_rec, struct ctop_tuple_rec). The addon exports
 * its sizes and offsets; checkLayout() refuses to run on a mismatch rather
 * than misread counts.
 */
import { CtopError } from '../errors.js';

export interface NativeLayout {
  portRecSize: number;
  tupleRecSize: number;
  portCountsOffset: number;
  tupleCountsOffset: number;
  tupleSaddrOffset: number;
  tupleDaddrOffset: number;
  totalsCount: number;
  eventRecSize: number;
  eventsOffset: number;
}

export const LAYOUT: NativeLayout = {
  portRecSize: 24,
  tupleRecSize: 64,
  portCountsOffset: 8,
  tupleCountsOffset: 48,
  tupleSaddrOffset: 12,
  tupleDaddrOffset: 28,
  totalsCount: 15,
  eventRecSize: 48,
  eventsOffset: 8,
};

/** Indexes into readTotals(), as enum ctop_total in bpf/ctop.h. */
export const TOTAL = {
  inserts: 0,
  drops: 1,
  portOverflow: 2,
  tupleOverflow: 3,
  dropUnparsed: 4,
  netnsOverflow: 5,
  otherNfDrops: 6,
  dropTupleOverflow: 7,
  tupleEntries: 8,
  dropTupleEntries: 9,
  deletes: 10,
  earlyDrops: 11,
  insertFailed: 12,
  clashes: 13,
  eventsOverflow: 14,
} as const;

export function checkLayout(native: NativeLayout): void {
  for (const k of Object.keys(LAYOUT) as (keyof NativeLayout)[]) {
    if (native[k] !== LAYOUT[k]) {
      throw new CtopError(
        `the native addon's record layout differs from this build (${k}: ${native[k]} != ${LAYOUT[k]})`,
        'rebuild everything with `npm run build`',
      );
    }
  }
}

export type Family = 'ipv4' | 'ipv6';

export interface PortCount {
  netns: number;
  family: Family;
  proto: number;
  port: number;
  inserts: number;
  drops: number;
}

/** Per-port entry life cycle (function tiers), cumulative since the probe
 * loaded. `entries` is inserts minus deletions since then: the live entries
 * ctop saw inserted; entries older than the probe are not in it, and their
 * deletion makes it smaller (it can go below zero). */
export interface PortEvents {
  netns: number;
  family: Family;
  proto: number;
  port: number;
  entries: number;
  deletes: number;
  earlyDrops: number;
  insertFailed: number;
  clashes: number;
}

export interface TupleCount {
  netns: number;
  family: Family;
  proto: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  inserts: number;
  drops: number;
}

const AF_INET = 2;

function family(af: number): Family {
  return af === AF_INET ? 'ipv4' : 'ipv6';
}

/** u64 counters as numbers: exact below 2^53. */
function u64(b: Buffer, off: number): number {
  return Number(b.readBigUInt64LE(off));
}

export function decodePorts(b: Buffer): PortCount[] {
  const out: PortCount[] = [];
  for (let off = 0; off + LAYOUT.portRecSize <= b.length; off += LAYOUT.portRecSize) {
    out.push({
      netns: b.readUInt32LE(off),
      family: family(b.readUInt8(off + 4)),
      proto: b.readUInt8(off + 5),
      port: b.readUInt16LE(off + 6),
      inserts: u64(b, off + LAYOUT.portCountsOffset),
      drops: u64(b, off + LAYOUT.portCountsOffset + 8),
    });
  }
  return out;
}

export function formatAddr(b: Buffer, fam: Family): string {
  if (fam === 'ipv4') return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** One string per 5-tuple and namespace, for joining and windowing. */
export function tupleKey(t: TupleCount): string {
  return `${t.netns}/${t.family}/${t.proto}/${t.src}/${t.sport}/${t.dst}/${t.dport}`;
}

/** Joins the insert map's and the drop map's records into one row per tuple. */
export function mergeTuples(inserts: TupleCount[], drops: TupleCount[]): TupleCount[] {
  const byKey = new Map<string, TupleCount>();
  const key = tupleKey;
  for (const t of inserts) byKey.set(key(t), { ...t, drops: 0 });
  for (const t of drops) {
    const k = key(t);
    const row = byKey.get(k);
    if (row) row.drops += t.drops;
    else byKey.set(k, { ...t, inserts: 0 });
  }
  return [...byKey.values()];
}

export function decodeTuples(b: Buffer): TupleCount[] {
  const out: TupleCount[] = [];
  for (let off = 0; off + LAYOUT.tupleRecSize <= b.length; off += LAYOUT.tupleRecSize) {
    const fam = family(b.readUInt8(off + 4));
    out.push({
      netns: b.readUInt32LE(off),
      family: fam,
      proto: b.readUInt8(off + 5),
      sport: b.readUInt16LE(off + 6),
      dport: b.readUInt16LE(off + 8),
      src: formatAddr(b.subarray(off + LAYOUT.tupleSaddrOffset, off + LAYOUT.tupleSaddrOffset + 16), fam),
      dst: formatAddr(b.subarray(off + LAYOUT.tupleDaddrOffset, off + LAYOUT.tupleDaddrOffset + 16), fam),
      inserts: u64(b, off + LAYOUT.tupleCountsOffset),
      drops: u64(b, off + LAYOUT.tupleCountsOffset + 8),
    });
  }
  return out;
}

export function decodeEvents(b: Buffer): PortEvents[] {
  const out: PortEvents[] = [];
  for (let off = 0; off + LAYOUT.eventRecSize <= b.length; off += LAYOUT.eventRecSize) {
    const e = off + LAYOUT.eventsOffset;
    out.push({
      netns: b.readUInt32LE(off),
      family: family(b.readUInt8(off + 4)),
      proto: b.readUInt8(off + 5),
      port: b.readUInt16LE(off + 6),
      // the per-CPU sum wraps modulo 2^64: read it as signed
      entries: Number(b.readBigInt64LE(e)),
      deletes: u64(b, e + 8),
      earlyDrops: u64(b, e + 16),
      insertFailed: u64(b, e + 24),
      clashes: u64(b, e + 32),
    });
  }
  return out;
}
