/**
 * The live screen's occupancy: a census of the table in a background thread
 * (occupancyWorker.ts) at an interval that keeps its CPU time within a
 * budget, and, on the function tiers, the kernel's per-port count of
 * confirmed minus destroyed entries read the moment each census arrives, so
 * ports are carried forward between censuses (model/occupancy.ts).
 */
import { Worker } from 'node:worker_threads';
import type { CensusCost, OccupancyCensus, OccupancyFeed, OccupancyInput } from '../model/occupancy.js';
import type { KernelSource } from './kernelSource.js';
import { locateForTests, type Locate } from './hashWalk.js';
import type { NetnsRef } from './netnsScan.js';

/** Default CPU budget of the background census: 2 % of one core. */
export const DEFAULT_BUDGET_SHARE = 0.02;

export interface WorkerStart {
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
  private latest: OccupancyInput | undefined;
  private lastError: string | undefined;

  constructor(private readonly o: BackgroundCensusOptions = {}) {}

  start(): void {
    const data: WorkerStart = {
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
    // the screen's quit must not wait for a census in flight
    w.unref();
    this.worker = w;
  }

  input(): OccupancyInput | undefined {
    return this.latest;
  }

  error(): string | undefined {
    return this.lastError;
  }

  /** Asks the thread to stop after the census in flight; the process exit ends it otherwise. */
  close(): void {
    this.worker?.postMessage({ type: 'stop' });
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
