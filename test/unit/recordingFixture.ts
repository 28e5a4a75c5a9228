/** A realistic recording built through the real model (buildSnapshot), for unit tests. */
import { buildSnapshot, type SnapshotV1 } from '../../src/model/snapshot.js';
import { headerLine, snapshotLine } from '../../src/io/recording.js';
import { ZERO_STATS, type Sample } from '../../src/model/sample.js';
import { portCount } from '../support/sample.js';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');

function sample(i: number, spec: { ports: [number, number][]; count: number; drops?: number }): Sample {
  const inserts = spec.ports.reduce((a, [, n]) => a + n, 0);
  return {
    monoMs: i * 1000,
    wallTime: new Date(T0 + i * 1000).toISOString(),
    probe: { tier: 'netfilter', programs: [{ name: 'ctop_nf_confirm', hook: 'nf', attached: true }], refused: [] },
    ports: spec.ports.map(([port, n]) => portCount({ netns: 4026531840, family: 'ipv4', proto: 17, port, inserts: n, drops: port === 53 ? (spec.drops ?? 0) : 0 })),
    tuples: [],
    totals: { inserts, drops: spec.drops ?? 0, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
    namespaces: [{ inode: 4026531840, name: 'host', count: spec.count, stats: { ...ZERO_STATS, drop: spec.drops ?? 0 }, links: 4 }],
    max: 1000,
    buckets: 1024,
    capacity: { ports: 8192, tuples: 16384, dropTuples: 4096 },
    tupleEntries: 0,
    dropTupleEntries: 0,
    netnsErrors: [],
  };
}

/**
 * `windows` one-second windows: port 53 gets 100 inserts/s, port 443
 * `growth` more each second, the table fills by 50 entries/s from 100.
 */
export function makeSnapshots(windows = 6, opts: { port443?: boolean; drops?: boolean } = {}): SnapshotV1[] {
  const out: SnapshotV1[] = [];
  let prev = sample(0, { ports: [[53, 0], [443, 0]], count: 100 });
  let c53 = 0;
  let c443 = 0;
  let drops = 0;
  for (let i = 1; i <= windows; i++) {
    c53 += 100;
    if (opts.port443 !== false) c443 += 10 * i;
    if (opts.drops) drops += 2;
    const cur = sample(i, { ports: [[53, c53], [443, c443]], count: 100 + 50 * i, drops });
    out.push(buildSnapshot(prev, cur, { host: 'web-1', kernel: '6.18.0', top: 20 }));
    prev = cur;
  }
  return out;
}

export function recordingText(snaps: SnapshotV1[], extra: Record<string, number> = { memTotalBytes: 16 * 1024 ** 3, wordBits: 64 }): string {
  const head = headerLine({ host: 'web-1', kernel: '6.18.0', startedAt: snaps[0]?.startedAt ?? '2026-11-25T10:00:00.000Z', everyMs: 1000, ...extra });
  return [head, ...snaps.map(snapshotLine)].join('\n') + '\n';
}
