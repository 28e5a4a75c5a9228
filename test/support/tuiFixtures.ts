/**
 * Small, deterministic recordings for the live screen's tests: typed
 * ctop.snapshot/v1 windows (the shape `ctop record` writes), with a table
 * that grows, a port that dominates inserts, and drops from window 3 on.
 */
import { writeFileSync } from 'node:fs';
import { RECORDING_SCHEMA } from '../../src/model/recording.js';
import type { SnapshotV1, TupleRow, PortRow } from '../../src/model/snapshot.js';

export const HOST_NS = 4026531840;
export const LAB_NS = 4026532999;

export interface WindowSpec {
  index: number;
  count: number;
  drops: number;
}

export function fixtureWindow(i: number, o: { max?: number; buckets?: number; tier?: 'netfilter' | 'stats' } = {}): SnapshotV1 {
  const max = o.max ?? 65536;
  const durationMs = 1000;
  const dnsInserts = 600 + 10 * i;
  const drops = i >= 2 ? 5 * i : 0;
  const ports: PortRow[] = [
    { netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: 53, inserts: dnsInserts, drops },
    { netns: HOST_NS, family: 'ipv4', proto: 'tcp', protoNum: 6, port: 443, inserts: 200, drops: 0 },
    { netns: HOST_NS, family: 'ipv4', proto: 'tcp', protoNum: 6, port: 80, inserts: 100, drops: 0 },
    { netns: LAB_NS, family: 'ipv6', proto: 'udp', protoNum: 17, port: 123, inserts: 50, drops: 0 },
    { netns: HOST_NS, family: 'ipv4', proto: 'icmp', protoNum: 1, port: 8, inserts: 10, drops: 0 },
  ];
  const tuples: TupleRow[] = [];
  for (let k = 0; k < 12; k++) {
    tuples.push({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, src: `198.18.0.${10 + (k % 4)}`, sport: 40000 + k, dst: '198.18.0.2', dport: 53, inserts: 50 - k, drops: 0 });
  }
  tuples.push({ netns: HOST_NS, family: 'ipv4', proto: 'tcp', protoNum: 6, src: '198.18.1.7', sport: 51000, dst: '198.18.1.1', dport: 443, inserts: 20, drops: 0 });
  tuples.push({ netns: LAB_NS, family: 'ipv6', proto: 'udp', protoNum: 17, src: '2001:2::10', sport: 123, dst: '2001:2::1', dport: 123, inserts: 9, drops: 0 });
  if (drops > 0) {
    tuples.push({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, src: '198.18.0.66', sport: 5353, dst: '198.18.0.2', dport: 53, inserts: 0, drops });
  }
  const labCount = 20000 + 3000 * i;
  const hostCount = 1200;
  const inserts = ports.reduce((a, p) => a + p.inserts, 0);
  const stats = o.tier === 'stats';
  return {
    schema: 'ctop.snapshot/v1',
    host: 'fixture-host',
    kernel: '6.18.0-test',
    startedAt: new Date(Date.UTC(2026, 0, 1, 10, 0, i)).toISOString(),
    durationMs,
    probe: { tier: stats ? 'stats' : 'netfilter', programs: [], refused: [] },
    table: { count: labCount + hostCount, max, buckets: o.buckets ?? 16384, fillRatio: Math.round((labCount / max) * 1e4) / 1e4 },
    rates: {
      insertsPerSec: stats ? null : inserts,
      dropsPerSec: drops,
      earlyDropsPerSec: i >= 3 ? 2 : 0,
      insertFailedPerSec: i >= 4 ? 1 : 0,
      clashResolvePerSec: 0,
      searchRestartPerSec: 0,
      chainTooLongPerSec: 0,
      invalidPerSec: 0,
    },
    totals: {
      inserts: stats ? null : inserts,
      drops,
      dropsAttributed: stats ? null : drops,
      earlyDrops: i >= 3 ? 2 : 0,
      insertFailed: i >= 4 ? 1 : 0,
      clashResolve: 0,
      searchRestart: 0,
      chainTooLong: 0,
      invalid: 0,
    },
    ports: stats ? [] : ports,
    tuples: stats ? [] : tuples,
    namespaces: [
      { inode: LAB_NS, name: 'ctop-t-srv', count: labCount, fillRatio: Math.round((labCount / max) * 1e4) / 1e4, inserts: stats ? null : dnsInserts + 50, drops, earlyDrops: i >= 3 ? 2 : 0, insertFailed: i >= 4 ? 1 : 0 },
      { inode: HOST_NS, name: 'host', count: hostCount, fillRatio: Math.round((hostCount / max) * 1e4) / 1e4, inserts: stats ? null : 310, drops: 0, earlyDrops: 0, insertFailed: 0 },
    ],
    overflow: {
      portMapFull: 0, tupleMapFull: 0, dropTupleMapFull: 0, portMapEntries: 5, portMapCapacity: 8192, tupleMapEntries: tuples.length,
      tupleMapCapacity: 16384, dropTupleMapEntries: drops > 0 ? 1 : 0, dropTupleMapCapacity: 4096, dropsUnparsed: 0, netnsMapFull: 0, portsOmitted: 0, tuplesOmitted: 0,
    },
    netnsErrors: [],
  };
}

export function recordingText(windows: SnapshotV1[], tail = ''): string {
  const header = { schema: RECORDING_SCHEMA, host: 'fixture-host', kernel: '6.18.0-test', startedAt: windows[0]?.startedAt ?? '2026-01-01T10:00:00.000Z', everyMs: 1000 };
  return [JSON.stringify(header), ...windows.map((w) => JSON.stringify(w))].join('\n') + '\n' + tail;
}

/** Writes a recording of `n` fixture windows; `corruptTail` appends a line that is not JSON. */
export function writeFixtureRecording(file: string, n: number, o: { corruptTail?: boolean } = {}): void {
  const windows = Array.from({ length: n }, (_, i) => fixtureWindow(i));
  writeFileSync(file, recordingText(windows, o.corruptTail ? '{"schema":"ctop.snapshot/v1", "host": "cut sho\n{}\n' : ''));
}

/** Port 7777's single burst: this many new entries in one 1 s window. */
export const BURST_PORT = 7777;
export const BURST_INSERTS = 30_000;

/**
 * Window `i` of a recording of steady traffic (fixtureWindow(0)'s ports,
 * every window the same) with one burst on udp/7777 in window `burstAt` only.
 */
export function burstWindow(i: number, burstAt: number): SnapshotV1 {
  const w = fixtureWindow(0);
  const burst = i === burstAt ? BURST_INSERTS : 0;
  const ports: PortRow[] = burst > 0 ? [...w.ports, { netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: BURST_PORT, inserts: burst, drops: 0 }] : w.ports;
  const inserts = ports.reduce((a, p) => a + p.inserts, 0);
  return {
    ...w,
    startedAt: new Date(Date.UTC(2026, 0, 1, 10, 0, 0) + i * 1000).toISOString(),
    ports,
    rates: { ...w.rates, insertsPerSec: inserts },
    totals: { ...w.totals, inserts },
    namespaces: w.namespaces.map((n) => (n.inode === LAB_NS ? { ...n, inserts: (n.inserts ?? 0) + burst } : n)),
  };
}

/** rangeWindow's ports: udp/60000-60099 each making RANGE_INSERTS new entries a window and holding
 * RANGE_HELD; udp/20000-20063 holding STREAM_HELD each and making none. */
export const RANGE_INSERTS = 3;
export const RANGE_HELD = 40;
export const STREAM_HELD = 500;

/**
 * Window `i` of a recording with port ranges and roles: fixtureWindow(i)'s
 * ports as servers (udp/123 a client), a 100-port UDP range of servers, a
 * 64-port UDP range that only holds entries, and a census of what each holds.
 */
export function rangeWindow(i: number): SnapshotV1 {
  const w = fixtureWindow(i);
  const roles = (role: 'server' | 'client', n: number): NonNullable<PortRow['roles']> => ({ server: 0, client: 0, local: 0, forward: 0, [role]: n });
  const held = (p: number): number => (p === 53 ? 20_000 : p === 443 ? 900 : 0);
  const ports: PortRow[] = [
    ...w.ports.map((p) => ({ ...p, roles: roles(p.port === 123 ? 'client' : 'server', p.inserts), occupancy: held(p.port) })),
    ...Array.from({ length: 100 }, (_, k): PortRow => ({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: 60000 + k, inserts: RANGE_INSERTS, drops: 0, roles: roles('server', RANGE_INSERTS), occupancy: RANGE_HELD })),
    ...Array.from({ length: 64 }, (_, k): PortRow => ({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: 20000 + k, inserts: 0, drops: 0, roles: roles('server', 0), occupancy: STREAM_HELD })),
  ];
  const inserts = ports.reduce((a, p) => a + p.inserts, 0);
  const occ = ports.filter((p) => (p.occupancy ?? 0) > 0);
  const entries = occ.reduce((a, p) => a + (p.occupancy ?? 0), 0);
  return {
    ...w,
    ports,
    rates: { ...w.rates, insertsPerSec: inserts },
    totals: { ...w.totals, inserts },
    namespaces: w.namespaces.map((n) => (n.inode === LAB_NS ? { ...n, inserts: (n.inserts ?? 0) + 100 * RANGE_INSERTS } : n)),
    occupancy: {
      method: 'bpf-hash-walk',
      live: false,
      takenAt: w.startedAt,
      ageMs: 1000,
      entries,
      namespaces: [LAB_NS, HOST_NS].map((inode) => ({ inode, entries: occ.filter((p) => p.netns === inode).reduce((a, p) => a + (p.occupancy ?? 0), 0) })),
      ports: occ.map((p) => ({ netns: p.netns, family: p.family, proto: p.proto, protoNum: p.protoNum, port: p.port, entries: p.occupancy! })),
      portsOmitted: 0,
      omittedEntries: 0,
      sources: [],
    },
  };
}
