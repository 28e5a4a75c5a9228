import { describe, expect, it } from 'vitest';
import { checkLayout, decodePorts, decodeTotals, decodeTuples, formatAddr, LAYOUT, TOTAL } from '../../src/native/decode.js';

/** struct ctop_port_rec: key, inserts_by_role[server, client, local, forward], drops */
function portRec(netns: number, af: number, proto: number, port: number, roles: bigint[], drops: bigint): Buffer {
  const b = Buffer.alloc(LAYOUT.portRecSize);
  b.writeUInt32LE(netns, 0);
  b.writeUInt8(af, 4);
  b.writeUInt8(proto, 5);
  b.writeUInt16LE(port, 6);
  roles.forEach((n, i) => b.writeBigUInt64LE(n, LAYOUT.portRolesOffset + 8 * i));
  b.writeBigUInt64LE(drops, LAYOUT.portDropsOffset);
  return b;
}

describe('decode', () => {
  it('decodes port records as laid out in bpf/ctop.h', () => {
    const b = Buffer.concat([portRec(4026531840, 2, 17, 53, [6n, 1n, 3n, 0n], 2n), portRec(7, 10, 6, 443, [0n, 0n, 0n, 2n ** 40n], 0n)]);
    expect(decodePorts(b)).toEqual([
      { netns: 4026531840, family: 'ipv4', proto: 17, port: 53, inserts: 10, drops: 2, roles: { server: 6, client: 1, local: 3, forward: 0 } },
      { netns: 7, family: 'ipv6', proto: 6, port: 443, inserts: 2 ** 40, drops: 0, roles: { server: 0, client: 0, local: 0, forward: 2 ** 40 } },
    ]);
  });

  it('decodes tuple records', () => {
    const b = Buffer.alloc(LAYOUT.tupleRecSize);
    b.writeUInt32LE(99, 0);
    b.writeUInt8(2, 4);
    b.writeUInt8(6, 5);
    b.writeUInt16LE(40000, 6);
    b.writeUInt16LE(80, 8);
    Buffer.from([198, 18, 0, 1]).copy(b, LAYOUT.tupleSaddrOffset);
    Buffer.from([198, 18, 0, 2]).copy(b, LAYOUT.tupleDaddrOffset);
    b.writeBigUInt64LE(3n, LAYOUT.tupleCountsOffset);
    b.writeBigUInt64LE(1n, LAYOUT.tupleCountsOffset + 8);
    expect(decodeTuples(b)).toEqual([
      { netns: 99, family: 'ipv4', proto: 'tcp', protoNum: 6, sport: 40000, dport: 80, src: '198.18.0.1', dst: '198.18.0.2', inserts: 3, drops: 1 },
    ]);
  });

  it('formats IPv6 per RFC 5952', () => {
    const a = Buffer.alloc(16);
    a.writeUInt16BE(0x2001, 0);
    a.writeUInt16BE(0x2, 2);
    a.writeUInt16BE(0x2, 14);
    expect(formatAddr(a, 'ipv6')).toBe('2001:2::2');
    expect(formatAddr(Buffer.alloc(16), 'ipv6')).toBe('::');
    const b = Buffer.alloc(16);
    b.writeUInt16BE(1, 0);
    b.writeUInt16BE(1, 4);
    b.writeUInt16BE(1, 14);
    expect(formatAddr(b, 'ipv6')).toBe('1:0:1::1');
  });

  it('refuses a native layout that differs', () => {
    expect(() => checkLayout({ ...LAYOUT })).not.toThrow();
    expect(() => checkLayout({ ...LAYOUT, tupleRecSize: 60 })).toThrow(/tupleRecSize: 60 != 64/);
  });
});

describe('decodeTuples address text', () => {
  it('gives each record its own addresses when decoding many (the IPv4 text is remembered by value)', () => {
    const rec = (src: number[], dst: number[]): Buffer => {
      const b = Buffer.alloc(LAYOUT.tupleRecSize);
      b.writeUInt8(2, 4);
      Buffer.from(src).copy(b, LAYOUT.tupleSaddrOffset);
      Buffer.from(dst).copy(b, LAYOUT.tupleDaddrOffset);
      return b;
    };
    const b = Buffer.concat([rec([198, 18, 0, 1], [198, 18, 0, 2]), rec([198, 18, 0, 2], [198, 18, 0, 1]), rec([255, 0, 128, 7], [0, 0, 0, 0])]);
    const rows = decodeTuples(Buffer.concat([b, b]));
    expect(rows.map((r) => `${r.src}>${r.dst}`)).toEqual([
      '198.18.0.1>198.18.0.2', '198.18.0.2>198.18.0.1', '255.0.128.7>0.0.0.0',
      '198.18.0.1>198.18.0.2', '198.18.0.2>198.18.0.1', '255.0.128.7>0.0.0.0',
    ]);
  });
});

describe('decodeTotals', () => {
  it('reads each counter at its ctop.h index; the entry gauges and eventsOverflow are not totals', () => {
    const t = Array.from({ length: Object.keys(TOTAL).length }, (_, i) => 100 + i);
    expect(decodeTotals(t)).toEqual({
      inserts: 100, drops: 101, portOverflow: 102, tupleOverflow: 103, dropUnparsed: 104, netnsOverflow: 105, otherNfDrops: 106, dropTupleOverflow: 107,
      deletes: 110, earlyDrops: 111, insertFailed: 112, clashes: 113,
    });
    expect(decodeTotals([7])).toMatchObject({ inserts: 7, drops: 0, clashes: 0 });
  });
});
