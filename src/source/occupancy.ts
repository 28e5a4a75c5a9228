/**
 * The live screen's occupancy: a census of the table in a background thread
 * (occupancyWorker.ts) at an interval that keeps its CPU time within a
 * budget, and, on the function tiers, the kernel's per-port count of
 * confirmed minus destroyed entries read the moment each census arrives, so
 * ports are carried forward between censuses (model/occupancy.ts).
 */
import { Worker } from 'node:worker_threads';
import { DEFAULT_BUDGET_SHARE, type CensusCost, type OccupancyCensus, type OccupancyFeed, type OccupancyInput } from '../model/occupancy.js';
import type { KernelSource } from './kernelSource.js';
import { locateForTests, type Locate } from './hashWalk.js';
import type { NetnsRef } from './netnsScan.js';


/**
 * The census thread's state, one Int32 shared with it. The process must not
 * end while the thread is inside a native call: Node then terminates the
 * thread's JavaScript, the addon's calls into N-API fail on the way out of
 * the walk, and the C++ exception they raise cannot be thrown into a
 * terminating thread (an abort). So the thread enters a census only by
 * moving IDLE to BUSY, and close() waits for BUSY to end and moves IDLE to
 * STOPPED, after which the thread never enters native code again.
 */
export const CENSUS_IDLE = 0;
export const CENSUS_BUSY = 1;
export const CENSUS_STOPPED = 2;
/** How long close() waits for a census in flight (a walk of 1,000,000 entries takes under 1 s). */
export const CLOSE_WAIT_MS = 5000;

export interface WorkerStart {
  /** one Int32: CENSUS_IDLE, CENSUS_BUSY or CENSUS_STOPPED */
  state: SharedArrayBuffer;
  target?: NetnsRef;
  method: 'auto' | 'ctnetlink';
  locate?: Locate;
  budgetShare: number;
  minIntervalMs: number;
  maxIntervalMs: number;
}

export type WorkerMessage = { type: 'census'; census: OccupancyCensus; cost: CensusCost } | { type: 'error'; message: string };

export interface BackgroundCensusOptions {
  target?: NetnsRef;
  method?: 'auto' | 'ctnetlink';
  budgetShare?: number;
  /** never more often than this (default 1 s) */
  minIntervalMs?: number;
  /** never less often than this (default 5 min) */
  maxIntervalMs?: number;
  /** function tiers: the kernel's live per-port entry counts, read when a census arrives */
  portEntries?: () => Map<string, number> | undefined;
}

export class BackgroundCensus implements OccupancyFeed {
  private worker: Worker | undefined;
  private readonly state = new Int32Array(new SharedArrayBuffer(4));
  private latest: OccupancyInput | undefined;
  private lastError: string | undefined;

  constructor(private readonly o: BackgroundCensusOptions = {}) {}

  start(): void {
    const data: WorkerStart = {
      state: this.state.buffer as SharedArrayBuffer,
      target: this.o.target,
      method: this.o.method ?? 'auto',
      locate: locateForTests(),
      budgetShare: this.o.budgetShare ?? DEFAULT_BUDGET_SHARE,
      minIntervalMs: this.o.minIntervalMs ?? 1000,
      maxIntervalMs: this.o.maxIntervalMs ?? 300_000,
    };
    const w = new Worker(new URL('./occupancyWorker.js', import.meta.url), { workerData: data });
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'census') {
        // read now, while the census is fresh: the carry-forward starts here
        const entriesAtCensus = this.o.portEntries?.();
        this.latest = { census: m.census, cost: m.cost, ...(entriesAtCensus ? { entriesAtCensus } : {}) };
        this.lastError = undefined;
      } else {
        this.lastError = m.message;
      }
    });
    w.on('error', (e) => {
      this.lastError = `the census thread failed: ${e.message}`;
    });
    // the thread alone keeps no process alive; close() makes ending it safe
    w.unref();
    this.worker = w;
  }

  input(): OccupancyInput | undefined {
    return this.latest;
  }

  error(): string | undefined {
    return this.lastError;
  }

  /**
   * Stops the thread: waits (blocking, at most `waitMs`) for a census in
   * flight to leave native code, and keeps the thread from starting another,
   * so that the process may exit at once after this returns. Synchronous, so
   * that the signal handlers' cleanups (which exit right after) get it too.
   */
  close(waitMs = CLOSE_WAIT_MS): void {
    if (!this.worker) return;
    const end = performance.now() + waitMs;
    for (;;) {
      if (Atomics.compareExchange(this.state, 0, CENSUS_IDLE, CENSUS_STOPPED) !== CENSUS_BUSY) break;
      const leftMs = end - performance.now();
      if (leftMs <= 0) break;
      Atomics.wait(this.state, 0, CENSUS_BUSY, leftMs);
    }
    this.worker.postMessage({ type: 'stop' });
    this.worker = undefined;
  }
}

/** Starts the background census for a started kernel source; undefined with --occupancy off. */
export function startBackgroundCensus(source: KernelSource, o: { occupancy: 'auto' | 'ctnetlink' | 'off'; budgetShare: number }): BackgroundCensus | undefined {
  if (o.occupancy === 'off') return undefined;
  const census = new BackgroundCensus({
    target: source.targetRef(),
    method: o.occupancy,
    budgetShare: o.budgetShare,
    portEntries: () => source.portEntries(),
  });
  census.start();
  return census;
}
