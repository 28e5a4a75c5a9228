/**
 * The background census's thread: counts the table (occupancyCensus.ts),
 * posts the result, then waits so that its CPU time stays within the budget
 * (a census that took 40 ms of CPU under a 2 % budget waits until 2 s after
 * it began), and again. A thread of its own, because a walk of a million
 * entries takes over a second and the screen must keep answering keys.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OccupancyCounter } from './occupancyCensus.js';
import type { CensusCost } from '../model/occupancy.js';
import type { WorkerStart, WorkerMessage } from './occupancy.js';

const start = workerData as WorkerStart;
const counter = new OccupancyCounter({ target: start.target, method: start.method, locate: start.locate });
let stopping = false;
let wake: (() => void) | undefined;
parentPort!.on('message', (m: { type: 'stop' }) => {
  if (m.type === 'stop') {
    stopping = true;
    wake?.();
  }
});

function post(m: WorkerMessage): void {
  parentPort!.postMessage(m);
}

async function loop(): Promise<void> {
  const began = performance.now();
  let cpuTotalMs = 0;
  let censuses = 0;
  while (!stopping) {
    const t0 = performance.now();
    let delayMs = start.minIntervalMs;
    try {
      const census = counter.take();
      censuses++;
      // a thread without schedstat: wall time is the upper bound of its CPU time
      const cpuMs = Number.isFinite(census.cpuMs) ? census.cpuMs : census.wallMs;
      cpuTotalMs += cpuMs;
      const periodMs = Math.min(start.maxIntervalMs, Math.max(start.minIntervalMs, cpuMs / start.budgetShare));
      delayMs = Math.max(0, periodMs - (performance.now() - t0));
      const cost: CensusCost = {
        censuses,
        lastCpuMs: round(cpuMs),
        lastWallMs: round(census.wallMs),
        intervalMs: Math.round(periodMs),
        cpuShare: round(cpuTotalMs / Math.max(1, performance.now() - began + delayMs), 4),
        budgetShare: start.budgetShare,
      };
      post({ type: 'census', census: { ...census, cpuMs }, cost });
    } catch (e) {
      post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
      delayMs = Math.max(delayMs, 5000);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delayMs);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
  process.exit(0);
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

void loop();
