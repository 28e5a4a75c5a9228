/**
 * The function tiers' per-port entry life cycle: decoding struct
 * ctop_event_rec (bpf/ctop.h) and its place in the snapshot.
 */
import { describe, expect, it } from 'vitest';
import { decodeEvents, LAYOUT } from '../../src/native/decode.js';
import { buildSnapshot } from '../../src/model/snapshot.js';
import { ZERO_STATS, type Sample } from '../../src/model/sample.js';
import { sample as baseSample } from '../support/sample.js';

/** One record as native/core hands it over: key, then five u64 counters. */
function rec(port: number, proto: number, entries: bigint, deletes: number, earlyDrops: number, insertFailed = 0, clashes = 0): Buffer {
  const b = Buffer.alloc(LAYOUT.eventRecSize);
  b.writeUInt32LE(4026531833, 0);
  b.writeUInt8(2, 4);
  b.writeUInt8(proto, 5);
  b.writeUInt16LE(port, 6);
  // the kernel's per-CPU sum wraps modulo 2^64, as BigUint64 does here
  b.writeBigUInt64LE(BigInt.asUintN(64, entries), LAYOUT.eventsOffset);
  b.writeBigUInt64LE(BigInt(deletes), LAYOUT.eventsOffset + 8);
  b.writeBigUInt64LE(BigInt(earlyDrops), LAYOUT.eventsOffset + 16);
  b.writeBigUInt64LE(BigInt(insertFailed), LAYOUT.eventsOffset + 24);
  b.writeBigUInt64LE(BigInt(clashes), LAYOUT.eventsOffset + 32);
  return b;
}

describe('decodeEvents', () => {
  it('reads every field of every record', () => {
    const out = decodeEvents(Buffer.concat([rec(7100, 6, 32n, 0, 0), rec(7200, 17, 13n, 3, 3, 1, 2)]));
    expect(out).toEqual([
      { netns: 4026531833, family: 'ipv4', proto: 6, port: 7100, entries: 32, deletes: 0, earlyDrops: 0, insertFailed: 0, clashes: 0 },
      { netns: 4026531833, family: 'ipv4', proto: 17, port: 7200, entries: 13, deletes: 3, earlyDrops: 3, insertFailed: 1, clashes: 2 },
    ]);
  });

  it('reads entries as signed: deletions of entries older than the probe make it negative', () => {
    expect(decodeEvents(rec(53, 17, -5n, 5, 0))[0]!.entries).toBe(-5);
  });

  it('ignores a trailing partial record', () => {
    expect(decodeEvents(Buffer.concat([rec(53, 17, 1n, 0, 0), Buffer.alloc(10)]))).toHaveLength(1);
  });
});

/** A function-tier sample: the shared fixture with the fentry tier and no netfilter links. */
function sample(over: Partial<Sample>): Sample {
  return baseSample({
    probe: { tier: 'fentry', programs: [], refused: [] },
    namespaces: [{ inode: 1, name: 'host', count: 0, stats: { ...ZERO_STATS }, links: 0 }],
    ...over,
  });
}

const ev = (port: number, entries: number, deletes: number, earlyDrops: number) =>
  ({ netns: 1, family: 'ipv4' as const, proto: 17, port, entries, deletes, earlyDrops, insertFailed: 0, clashes: 0 });
const pc = (port: number, inserts: number, drops = 0) => ({
  netns: 1,
  family: 'ipv4' as const,
  proto: 17,
  port,
  inserts,
  drops,
  roles: { server: inserts, client: 0, local: 0, forward: 0 },
});
const served = (n: number) => ({ server: n, client: 0, local: 0, forward: 0 });

describe('buildSnapshot with a function tier', () => {
  it('gives each port its live entries and the window deletions and early drops', () => {
    const a = sample({ monoMs: 0, ports: [pc(53, 10), pc(123, 4)], events: [ev(53, 10, 0, 0), ev(123, 4, 0, 0)] });
    const b = sample({ monoMs: 1000, ports: [pc(53, 25), pc(123, 4)], events: [ev(53, 20, 5, 2), ev(123, 1, 3, 3)] });
    const s = buildSnapshot(a, b, { host: 'h', kernel: '6.1', top: 0 });
    expect(s.ports).toEqual([
      { netns: 1, family: 'ipv4', proto: 'udp', protoNum: 17, port: 53, inserts: 15, drops: 0, roles: served(15), entries: 20, deletes: 5, earlyDrops: 2, insertFailed: 0, clashes: 0 },
      // no insert in the window, but three entries were evicted: still a row
      { netns: 1, family: 'ipv4', proto: 'udp', protoNum: 17, port: 123, inserts: 0, drops: 0, roles: served(0), entries: 1, deletes: 3, earlyDrops: 3, insertFailed: 0, clashes: 0 },
    ]);
  });

  it('leaves the fields out in the netfilter tier, which does not count them', () => {
    const a = sample({ probe: { tier: 'netfilter', programs: [], refused: [] }, ports: [] });
    const b = sample({ monoMs: 1000, probe: { tier: 'netfilter', programs: [], refused: [] }, ports: [pc(53, 3)] });
    const s = buildSnapshot(a, b, { host: 'h', kernel: '6.18', top: 0 });
    expect(s.ports).toEqual([{ netns: 1, family: 'ipv4', proto: 'udp', protoNum: 17, port: 53, inserts: 3, drops: 0, roles: served(3) }]);
  });
});
