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
 * The schedule is a budget over the thread's whole life (model/occupancy.ts
 * nextCensusAt): the next census starts when the thread's CPU time since it
 * started (module loading, loading the walk programs, every census, posting
 * the results) plus the expected cost of the next census is no more than the
 * budget's share of the time since it started, and never sooner than the
 * minimum interval. The first census runs at once. The expected cost is the
 * largest of the last RECENT censuses' CPU times: on a shared machine one
 * census of the same table costs up to twice another (measured 40-76 ms at
 * 100,000 entries), and a guess from the last one alone lets the share
 * overshoot whenever a dear census follows a cheap one.
 */
const RECENT = 4;

async function loop(): Promise<void> {
  let censuses = 0;
  const recentCpuMs: number[] = [];
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
      recentCpuMs.push(cpuMs);
      if (recentCpuMs.length > RECENT) recentCpuMs.shift();
      const nextAt = nextCensusAt({ startedMs: t0, spentCpuMs: spentMs, nextCpuMs: Math.max(...recentCpuMs), budgetShare: start.budgetShare, minIntervalMs: start.minIntervalMs, maxIntervalMs: start.maxIntervalMs });
      delayMs = Math.max(0, nextAt - now);
      const cost: CensusCost = {
        censuses,
        lastCpuMs: round(cpuMs),
        lastWallMs: round(census.wallMs),
        intervalMs: Math.round(nextAt - t0),
        // measured as this census ends, before the wait that follows it: the share since the
        // thread started, at its highest point between two censuses
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
