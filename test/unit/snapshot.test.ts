import { describe, expect, it } from 'vitest';
import { buildSnapshot, SNAPSHOT_SCHEMA } from '../../src/model/snapshot.js';
import { dominantRole, formatSnapshot } from '../../src/format/snapshotText.js';
import { ZERO_STATS } from '../../src/model/sample.js';
import { portCount, sample } from '../support/sample.js';

const OPTS = { host: 'h', kernel: '6.18', top: 20 };

describe('buildSnapshot', () => {
  const tuple = { netns: 1, family: 'ipv4' as const, proto: 'udp', protoNum: 17, src: '198.18.0.1', sport: 40000, dst: '198.18.0.2', dport: 53 };

  it("takes the source's tuple growth for the window as it is, when given", () => {
    const a = sample({ tuples: [{ ...tuple, inserts: 9, drops: 0 }] });
    const b = sample({ monoMs: 1000, tuples: [{ ...tuple, inserts: 90, drops: 0 }] });
    const tupleGrowth = [{ ...tuple, inserts: 2, drops: 1 }, { ...tuple, sport: 40001, inserts: 5, drops: 0 }];
    // not b - a: the growth is the window
    expect(buildSnapshot(a, b, { ...OPTS, tupleGrowth }).tuples.map((t) => [t.sport, t.inserts, t.drops])).toEqual([
      [40001, 5, 0],
      [40000, 2, 1],
    ]);
  });

  it('still joins cumulative samples from sources without windows (replay, fakes)', () => {
    const a = sample({ tuples: [{ ...tuple, inserts: 9, drops: 0 }] });
    const b = sample({ monoMs: 1000, tuples: [{ ...tuple, inserts: 12, drops: 0 }, { ...tuple, sport: 1, inserts: 0, drops: 0 }] });
    expect(buildSnapshot(a, b, OPTS).tuples.map((t) => [t.sport, t.inserts])).toEqual([[40000, 3]]);
  });

  it('reports window deltas, sorted by inserts, with per-second rates', () => {
    const a = sample({
      monoMs: 1000,
      ports: [portCount({ netns: 1, family: 'ipv4', proto: 17, port: 53, inserts: 100, drops: 0 })],
      totals: { inserts: 100, drops: 0, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
      namespaces: [{ inode: 1, name: 'host', count: 100, stats: { ...ZERO_STATS, drop: 5 }, links: 4 }],
    });
    const b = sample({
      monoMs: 3000,
      ports: [
        portCount({ netns: 1, family: 'ipv4', proto: 17, port: 53, inserts: 140, drops: 4 }),
        portCount({ netns: 1, family: 'ipv6', proto: 6, port: 443, inserts: 60, drops: 0 }),
        portCount({ netns: 1, family: 'ipv4', proto: 6, port: 22, inserts: 0, drops: 0 }),
      ],
      totals: { inserts: 200, drops: 4, portOverflow: 3, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
      namespaces: [{ inode: 1, name: 'host', count: 250, stats: { ...ZERO_STATS, drop: 9, earlyDrop: 2 }, links: 4 }],
    });
    const s = buildSnapshot(a, b, OPTS);
    expect(s.schema).toBe(SNAPSHOT_SCHEMA);
    expect(s.durationMs).toBe(2000);
    expect(s.ports).toEqual([
      { netns: 1, family: 'ipv6', proto: 'tcp', protoNum: 6, port: 443, inserts: 60, drops: 0, roles: { server: 60, client: 0, local: 0, forward: 0 } },
      { netns: 1, family: 'ipv4', proto: 'udp', protoNum: 17, port: 53, inserts: 40, drops: 4, roles: { server: 40, client: 0, local: 0, forward: 0 } },
    ]);
    expect(s.rates.insertsPerSec).toBe(50);
    expect(s.rates.dropsPerSec).toBe(2);
    expect(s.rates.earlyDropsPerSec).toBe(1);
    expect(s.totals).toMatchObject({ inserts: 100, drops: 4, dropsAttributed: 4, earlyDrops: 2 });
    expect(s.table).toEqual({ count: 250, max: 1000, buckets: 256, fillRatio: 0.25 });
    expect(s.overflow.portMapFull).toBe(3);
    expect(s.overflow.portMapEntries).toBe(3);
  });

  it('map use: the per-port hash entries against its capacity, not the port rows (slots hold ports outside it)', () => {
    const ports = Array.from({ length: 5 }, (_, i) => portCount({ netns: 1, family: 'ipv4', proto: 17, port: 1000 + i, inserts: 1, drops: 0 }));
    const b = sample({ ports, portHashEntries: 2, capacity: { ports: 4, tuples: 16, dropTuples: 8 } });
    const s = buildSnapshot(sample({}), b, OPTS);
    expect(s.ports).toHaveLength(5); // more rows than the hash holds
    expect(s.overflow).toMatchObject({ portMapEntries: 2, portMapCapacity: 4 });
    expect(formatSnapshot(s)).toContain('maps: port hash 2/4,');
  });

  it('fill is the fullest namespace, since the limit applies to each', () => {
    const b = sample({
      namespaces: [
        { inode: 1, name: 'host', count: 100, stats: { ...ZERO_STATS }, links: 4 },
        { inode: 2, name: 'pod', count: 900, stats: { ...ZERO_STATS }, links: 4 },
      ],
    });
    const s = buildSnapshot(sample({}), b, OPTS);
    expect(s.table.count).toBe(1000);
    expect(s.table.fillRatio).toBe(0.9);
    expect(s.namespaces.map((n) => n.name)).toEqual(['pod', 'host']);
  });

  it('--top keeps the busiest rows and counts the rest', () => {
    const ports = Array.from({ length: 30 }, (_, i) => portCount({ netns: 1, family: 'ipv4', proto: 17, port: 1000 + i, inserts: i + 1, drops: 0 }));
    const s = buildSnapshot(sample({}), sample({ monoMs: 1000, ports }), { ...OPTS, top: 5 });
    expect(s.ports.map((p) => p.port)).toEqual([1029, 1028, 1027, 1026, 1025]);
    expect(s.overflow.portsOmitted).toBe(25);
  });

  it('the statistics tier has no insert figures', () => {
    const probe = { tier: 'stats' as const, programs: [], refused: [{ tier: 'netfilter' as const, reason: 'no BTF' }] };
    const s = buildSnapshot(sample({ probe }), sample({ probe, monoMs: 1000 }), OPTS);
    expect(s.rates.insertsPerSec).toBeNull();
    expect(s.totals.inserts).toBeNull();
    expect(formatSnapshot(s)).toMatch(/per-port and per-tuple counts need the BPF tier/);
    expect(formatSnapshot(s)).toMatch(/netfilter refused: no BTF/);
  });

  it('the text report names drops and ports', () => {
    const b = sample({
      monoMs: 1000,
      ports: [portCount({ netns: 1, family: 'ipv4', proto: 17, port: 5000, inserts: 0, drops: 15 })],
      tuples: [{ netns: 1, family: 'ipv6', proto: 'udp', protoNum: 17, src: '2001:2::1', sport: 40000, dst: '2001:2::2', dport: 5000, inserts: 0, drops: 1 }],
      totals: { inserts: 0, drops: 15, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
      namespaces: [{ inode: 1, name: 'host', count: 20, stats: { ...ZERO_STATS, drop: 15 }, links: 4 }],
    });
    const text = formatSnapshot(buildSnapshot(sample({}), b, OPTS));
    expect(text).toMatch(/DROPS: conntrack refused 15 packet\(s\)/);
    expect(text).toMatch(/host\s+ipv4\s+udp\s+5000\s+0\s+15/);
    expect(text).toMatch(/\[2001:2::1\]:40000\s+\[2001:2::2\]:5000/);
  });

  it('gives each port the window inserts of each role, adding up to its inserts', () => {
    const row = (roles: { server: number; client: number; local: number; forward: number }) => ({
      netns: 1,
      family: 'ipv4' as const,
      proto: 6,
      port: 443,
      inserts: roles.server + roles.client + roles.local + roles.forward,
      drops: 0,
      roles,
    });
    const a = sample({ ports: [row({ server: 10, client: 5, local: 0, forward: 1 })] });
    const b = sample({ monoMs: 1000, ports: [row({ server: 17, client: 5, local: 2, forward: 4 })] });
    const s = buildSnapshot(a, b, OPTS);
    expect(s.ports).toHaveLength(1);
    expect(s.ports[0]!.roles).toEqual({ server: 7, client: 0, local: 2, forward: 3 });
    expect(s.ports[0]!.inserts).toBe(12);
    expect(formatSnapshot(s)).toMatch(/host\s+ipv4\s+tcp\s+443\s+12\s+0\s+server 58%/);
  });

  it('names the dominant role, with its share when it is not the only one', () => {
    expect(dominantRole({ server: 0, client: 4, local: 0, forward: 0 })).toBe('client');
    expect(dominantRole({ server: 1, client: 3, local: 0, forward: 0 })).toBe('client 75%');
    expect(dominantRole({ server: 0, client: 0, local: 0, forward: 0 })).toBe('-');
    expect(dominantRole(undefined)).toBe('-');
  });
});
