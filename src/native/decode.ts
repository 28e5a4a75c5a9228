/**
 * Decoders for the records native/core hands over, laid out as in
 * bpf/ctop.h (struct ctop_port_rec, struct ctop_tuple_rec). The addon exports
 * its sizes and offsets; checkLayout() refuses to run on a mismatch rather
 * than misread counts.
 */
import { CtopError } from '../errors.js';
import { family, protoName, type Family } from '../model/conntrack.js';
import { TRAFFIC_ROLES, type RoleCounts } from '../model/roles.js';
import type { PortCount, PortEvents, Totals, TupleCount } from '../model/sample.js';
import type { TupleColumns } from '../model/sample.js';

export interface NativeLayout {
  portRecSize: number;
  tupleRecSize: number;
  /** inserts_by_role[]: one u64 per role, in TRAFFIC_ROLES order */
  portRolesOffset: number;
  portDropsOffset: number;
  roleCount: number;
  tupleCountsOffset: number;
  tupleSaddrOffset: number;
  tupleDaddrOffset: number;
  totalsCount: number;
  eventRecSize: number;
  eventsOffset: number;
}

export const LAYOUT: NativeLayout = {
  portRecSize: 48,
  tupleRecSize: 64,
  portRolesOffset: 8,
  portDropsOffset: 40,
  roleCount: TRAFFIC_ROLES.length,
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

/** The kernel counters a Sample carries, each read at its TOTAL index. */
const TOTALS_FIELDS = ['inserts', 'drops', 'portOverflow', 'tupleOverflow', 'dropUnparsed', 'netnsOverflow', 'otherNfDrops', 'dropTupleOverflow', 'deletes', 'earlyDrops', 'insertFailed', 'clashes'] as const satisfies readonly (keyof Totals & keyof typeof TOTAL)[];

/** The probe's totals array (readTotals) as the model's Totals; a slot the array lacks reads 0. */
export function decodeTotals(t: readonly number[]): Totals {
  const out = {} as Required<Totals>;
  for (const k of TOTALS_FIELDS) out[k] = t[TOTAL[k]] ?? 0;
  return out;
}

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

/** u64 counters as numbers: exact below 2^53. */
function u64(b: Buffer, off: number): number {
  // two 32-bit halves: BigInt conversion costs several times more, and the
  // live screen decodes 64,000 tuples a second
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export function decodePorts(b: Buffer): PortCount[] {
  const out: PortCount[] = [];
  for (let off = 0; off + LAYOUT.portRecSize <= b.length; off += LAYOUT.portRecSize) {
    const r = off + LAYOUT.portRolesOffset;
    const roles: RoleCounts = {
      server: u64(b, r),
      client: u64(b, r + 8),
      local: u64(b, r + 16),
      forward: u64(b, r + 24),
    };
    out.push({
      netns: b.readUInt32LE(off),
      family: family(b.readUInt8(off + 4)),
      proto: b.readUInt8(off + 5),
      port: b.readUInt16LE(off + 6),
      inserts: roles.server + roles.client + roles.local + roles.forward,
      drops: u64(b, off + LAYOUT.portDropsOffset),
      roles,
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

/**
 * IPv4 addresses as text, remembered by their 32-bit value: a busy host's
 * tuples share few addresses (its own, its peers'), and each refresh decodes
 * thousands of them. Bounded: cleared when it reaches IPV4_CACHE_MAX.
 */
const IPV4_CACHE_MAX = 65_536;
const ipv4Text = new Map<number, string>();

function addrAt(b: Buffer, off: number, fam: Family): string {
  if (fam === 'ipv6') return formatAddr(b.subarray(off, off + 16), fam);
  const v = b.readUInt32BE(off);
  let s = ipv4Text.get(v);
  if (s === undefined) {
    if (ipv4Text.size >= IPV4_CACHE_MAX) ipv4Text.clear();
    s = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
    ipv4Text.set(v, s);
  }
  return s;
}

/** Protocol names by number, built once: one lookup per decoded tuple. */
const PROTO_NAMES = Array.from({ length: 256 }, (_, n) => protoName(n));

export function decodeTuples(b: Buffer): TupleCount[] {
  const n = Math.floor(b.length / LAYOUT.tupleRecSize);
  const out: TupleCount[] = new Array(n);
  for (let i = 0, off = 0; i < n; i++, off += LAYOUT.tupleRecSize) {
    const fam = family(b[off + 4]!);
    const proto = b[off + 5]!;
    out[i] = {
      netns: b.readUInt32LE(off),
      family: fam,
      proto: PROTO_NAMES[proto]!,
      protoNum: proto,
      src: addrAt(b, off + LAYOUT.tupleSaddrOffset, fam),
      sport: b.readUInt16LE(off + 6),
      dst: addrAt(b, off + LAYOUT.tupleDaddrOffset, fam),
      dport: b.readUInt16LE(off + 8),
      inserts: u64(b, off + LAYOUT.tupleCountsOffset),
      drops: u64(b, off + LAYOUT.tupleCountsOffset + 8),
    };
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

/**
 * The tuple records of `b` read in place (model/sample.ts TupleColumns): no
 * object per tuple. Numbers are read through typed-array views in the host's
 * byte order, which is the order the C core wrote them in.
 */
class BufferTupleColumns implements TupleColumns {
  readonly length: number;
  private readonly b: Buffer;
  private readonly u32: Uint32Array;
  private readonly u16: Uint16Array;
  private readonly w32 = LAYOUT.tupleRecSize / 4;
  private readonly counts32 = LAYOUT.tupleCountsOffset / 4;

  constructor(raw: Buffer) {
    this.length = Math.floor(raw.length / LAYOUT.tupleRecSize);
    // a view needs 4-byte alignment; the addon's buffers have it, a pooled copy may not
    this.b = raw.byteOffset % 4 === 0 ? raw : Buffer.from(new Uint8Array(raw));
    this.u32 = new Uint32Array(this.b.buffer, this.b.byteOffset, (this.length * LAYOUT.tupleRecSize) / 4);
    this.u16 = new Uint16Array(this.b.buffer, this.b.byteOffset, (this.length * LAYOUT.tupleRecSize) / 2);
  }

  netns(i: number): number {
    return this.u32[i * this.w32]!;
  }

  family(i: number): Family {
    return family(this.b[i * LAYOUT.tupleRecSize + 4]!);
  }

  protoNum(i: number): number {
    return this.b[i * LAYOUT.tupleRecSize + 5]!;
  }

  proto(i: number): string {
    return PROTO_NAMES[this.protoNum(i)]!;
  }

  src(i: number): string {
    return addrAt(this.b, i * LAYOUT.tupleRecSize + LAYOUT.tupleSaddrOffset, this.family(i));
  }

  /** IPv4: the address as a 32-bit integer (a small integer to the engine, no string) */
  srcKey(i: number): number | string {
    return this.family(i) === 'ipv4' ? this.u32[(i * LAYOUT.tupleRecSize + LAYOUT.tupleSaddrOffset) / 4]! | 0 : this.src(i);
  }

  sport(i: number): number {
    return this.u16[i * this.w32 * 2 + 3]!;
  }

  dst(i: number): string {
    return addrAt(this.b, i * LAYOUT.tupleRecSize + LAYOUT.tupleDaddrOffset, this.family(i));
  }

  dport(i: number): number {
    return this.u16[i * this.w32 * 2 + 4]!;
  }

  inserts(i: number): number {
    const k = i * this.w32 + this.counts32;
    return this.u32[k]! + this.u32[k + 1]! * 0x1_0000_0000;
  }

  drops(i: number): number {
    const k = i * this.w32 + this.counts32 + 2;
    return this.u32[k]! + this.u32[k + 1]! * 0x1_0000_0000;
  }

  row(i: number): TupleCount {
    const proto = this.protoNum(i);
    return {
      netns: this.netns(i),
      family: this.family(i),
      proto: PROTO_NAMES[proto]!,
      protoNum: proto,
      src: this.src(i),
      sport: this.sport(i),
      dst: this.dst(i),
      dport: this.dport(i),
      inserts: this.inserts(i),
      drops: this.drops(i),
    };
  }
}

/** The window's tuples as columns over the records (the buffer is kept, not copied). */
export function decodeTupleColumns(b: Buffer): TupleColumns {
  return new BufferTupleColumns(b);
}
