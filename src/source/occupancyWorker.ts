/**
 * The background census's thread: counts the table (occupancyCensus.ts),
 * posts the result, then waits so that its CPU time stays within the budget
 * (a thread that has used 40 ms of CPU under a 2 % budget counts again 2 s
 * after it started), and again. A thread of its own, because a walk of a million
 * entries takes over a second and the screen must keep answering keys.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OccupancyCounter, threadCpuMs } from './occupancyCensus.js';
import { nextCensusAt, type CensusCost } from '../model/occupancy.js';
import { CENSUS_BUSY, CENSUS_IDLE, type WorkerStart, type WorkerMessage } from './occupancy.js';

const start = workerData as WorkerStart;
const state = new Int32Array(start.state);
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

/**
 * The schedule is a budget over the thread's whole life: the next census
 * starts when the thread's CPU time since it started (module loading, every
 * census, posting the results) is no more than the budget's share of the time
 * since it started, and never sooner than the minimum interval.
 */
async function loop(): Promise<void> {
  let censuses = 0;
  while (!stopping) {
    // native code only while BUSY: close() may end the process whenever the state is not BUSY
    if (Atomics.compareExchange(state, 0, CENSUS_IDLE, CENSUS_BUSY) !== CENSUS_IDLE) break;
    const t0 = performance.now();
    let delayMs = start.minIntervalMs;
    try {
      let census;
      try {
        census = counter.take();
      } finally {
        Atomics.store(state, 0, CENSUS_IDLE);
        Atomics.notify(state, 0);
      }
      censuses++;
      // a thread without schedstat: wall time is the upper bound of its CPU time
      const cpuMs = Number.isFinite(census.cpuMs) ? census.cpuMs : census.wallMs;
      const threadMs = threadCpuMs();
      const now = performance.now(); // a worker's clock starts with the thread
      const spentMs = Number.isFinite(threadMs) ? threadMs : cpuMs * censuses;
      const nextAt = nextCensusAt({ startedMs: t0, spentCpuMs: spentMs, budgetShare: start.budgetShare, minIntervalMs: start.minIntervalMs, maxIntervalMs: start.maxIntervalMs });
      delayMs = Math.max(0, nextAt - now);
      const cost: CensusCost = {
        censuses,
        lastCpuMs: round(cpuMs),
        lastWallMs: round(census.wallMs),
        intervalMs: Math.round(nextAt - t0),
        // measured as this census ends, before the wait that follows it: an upper bound
        cpuShare: round(spentMs / Math.max(1, now), 4),
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
