/**
 * One measured window on a started KernelSource, shared by advise and
 * validate: sample, wait (picking up new namespaces each second), sample,
 * and build the snapshot with every port row kept.
 */
import { release } from 'node:os';
import { buildSnapshot, type SnapshotV1 } from '../model/snapshot.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { sleepMs } from '../util/signals.js';

const STEP_MS = 1000;

export async function measureWindow(source: KernelSource, durationMs: number): Promise<SnapshotV1> {
  const first = source.sample();
  const end = performance.now() + durationMs;
  for (let left = durationMs; left > 0; left = end - performance.now()) {
    await sleepMs(Math.min(STEP_MS, left));
    if (end - performance.now() > 0) source.rescanIfDue();
  }
  const last = source.sample();
  return buildSnapshot(first, last, { host: hostName(), kernel: release(), top: 0 });
}

/** The snapshot cut down to one namespace: its ports, its totals, its row. */
export function forNamespace(s: SnapshotV1, inode: number): SnapshotV1 {
  const ports = s.ports.filter((p) => p.netns === inode);
  const tuples = s.tuples.filter((t) => t.netns === inode);
  const namespaces = s.namespaces.filter((n) => n.inode === inode);
  const count = namespaces[0]?.count ?? 0;
  const inserts = s.totals.inserts === null ? null : ports.reduce((a, p) => a + p.inserts, 0);
  return {
    ...s,
    ports,
    tuples,
    namespaces,
    table: { ...s.table, count, fillRatio: s.table.max > 0 ? count / s.table.max : 0 },
    totals: { ...s.totals, inserts },
  };
}
