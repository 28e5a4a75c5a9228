/** Tuple rows encoded as the native core's records (bpf/ctop.h struct ctop_tuple_rec), for tests of the columnar window. */
import { LAYOUT } from '../../src/native/decode.js';
import type { TupleCount } from '../../src/model/sample.js';

function addrBytes(a: string, family: string): Buffer {
  if (family === 'ipv4') return Buffer.from(a.split('.').map(Number));
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

export function tupleRecords(rows: TupleCount[]): Buffer {
  const b = Buffer.alloc(rows.length * LAYOUT.tupleRecSize);
  rows.forEach((t, i) => {
    const off = i * LAYOUT.tupleRecSize;
    b.writeUInt32LE(t.netns, off);
    b.writeUInt8(t.family === 'ipv6' ? 10 : 2, off + 4);
    b.writeUInt8(t.protoNum, off + 5);
    b.writeUInt16LE(t.sport, off + 6);
    b.writeUInt16LE(t.dport, off + 8);
    addrBytes(t.src, t.family).copy(b, off + LAYOUT.tupleSaddrOffset);
    addrBytes(t.dst, t.family).copy(b, off + LAYOUT.tupleDaddrOffset);
    b.writeBigUInt64LE(BigInt(t.inserts), off + LAYOUT.tupleCountsOffset);
    b.writeBigUInt64LE(BigInt(t.drops), off + LAYOUT.tupleCountsOffset + 8);
  });
  return b;
}
