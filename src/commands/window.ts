/**
 * One measured window on a started KernelSource, shared by advise and
 * validate: sample, wait (picking up new namespaces each second), sample,
 * and build the snapshot with every port row kept (advise/report.ts
 * forNamespace cuts it to one namespace).
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
