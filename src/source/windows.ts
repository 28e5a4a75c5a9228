/**
 * The one window pipeline: sample -> window -> snapshot. Every command and
 * view that reads windows gets them here (or from replay.ts, the same
 * interface over a recording). LiveWindows owns the previous sample and the
 * source's tuple window, so no caller can take a sample that swallows
 * counts: a window always runs from the end of the one before it.
 */
import { buildSnapshot, type SnapshotV1, type WindowSource } from '../model/snapshot.js';
import type { OccupancyFeed, OccupancyInput } from '../model/occupancy.js';
import type { Sample, Source, TupleColumns, TupleCount } from '../model/sample.js';
import { sleepMs } from '../util/signals.js';

export interface LiveOptions {
  /** Rows kept per window, busiest first (0: all). */
  top: number;
  /** With top 0: every row in map order, for callers that rank what they show themselves. */
  unsorted?: boolean;
  /** Read the per-tuple maps (default). Callers that show no tuples skip them: they are most of what a sample costs. */
  tuples?: boolean;
  /** Hand the tuples over as columns read in place (SnapshotV1.tupleColumns), not one object each: the live screen. */
  columns?: boolean;
  /** The first window starts from zero rather than from start(): it carries
   * everything the kernel counted before (ctop's maps since the probe loaded,
   * conntrack's statistics since each namespace began), as `conntrack -S` shows them. */
  fromZero?: boolean;
}

export interface MeasureOptions {
  /** Resolves when the window should end early (Ctrl-C); the window then closes at once. */
  interrupted?: Promise<unknown>;
  /** Called after each step inside the window, with the time left. */
  onStep?: (leftMs: number) => void;
  /** The step inside the window (STEP_MS). */
  stepMs?: number;
  /** Who holds the table, counted right before the window closes (snapshot's census at the window's end). */
  occupancyAtEnd?: () => OccupancyInput | undefined;
}

/** The step inside a window: new namespaces are picked up this often (a sample's counters are cumulative: only the namespace list needs care in between). */
export const STEP_MS = 1000;

export class LiveWindows implements WindowSource {
  readonly label = 'live';
  private prev: Sample | undefined;
  /** the background census: who holds the table (the live screen) */
  private occupancy: OccupancyFeed | undefined;

  constructor(
    private readonly source: Source,
    private readonly where: { host: string; kernel: string },
    private readonly shape: LiveOptions = { top: 0, unsorted: true },
  ) {}

  /** Starts the source and opens the first window; returns its first sample (for start-up checks and banners). */
  async start(): Promise<Sample> {
    try {
      await this.source.start();
      const first = this.open();
      if (this.shape.fromZero) this.prev = zeroed(first);
      return first;
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** A background census feeding each window; it starts after the source: it needs the namespace the source resolved. */
  attachOccupancy(feed: OccupancyFeed | undefined): void {
    this.occupancy = feed;
  }

  /** Why the background census failed, if it did: the screen says so where occupancy would be. */
  occupancyError(): string | undefined {
    return this.occupancy?.error();
  }

  /** Drops the open window and opens a new one now: for a caller that changed the system and measures only what follows. */
  reopen(): Sample {
    if (!this.prev) throw new Error('LiveWindows.reopen() before start()');
    return this.open();
  }

  private open(): Sample {
    const s = this.source.sample();
    // the tuples that grew before this moment belong to no window of ours
    if (this.shape.tuples !== false) this.takeTuples();
    this.prev = s;
    return s;
  }

  /**
   * Closes the open window now and opens the next one. A failed sample
   * keeps the open window, so the window after a failure spans it and no
   * counts are lost. Undefined before start(). `occupancy` is who holds the
   * table at the window's end (else the attached feed's latest census).
   */
  next(occupancy?: OccupancyInput): SnapshotV1 | undefined {
    const prev = this.prev;
    if (!prev) return undefined;
    const held = occupancy ?? this.occupancy?.input();
    const cur = this.source.sample();
    const tuples = this.shape.tuples === false ? { tupleGrowth: [] } : this.takeTuples();
    this.prev = cur;
    return buildSnapshot(prev, cur, {
      ...this.where,
      top: this.shape.top,
      ...(this.shape.unsorted ? { unsorted: true } : {}),
      ...tuples,
    }, held);
  }

  /** The source's tuple window, as columns where asked for and the source offers them. */
  private takeTuples(): { tupleGrowth?: TupleCount[]; tupleColumns?: TupleColumns } {
    if (this.shape.columns && this.source.takeTupleColumns) return { tupleColumns: this.source.takeTupleColumns() };
    const tupleGrowth = this.source.takeTupleGrowth?.();
    return tupleGrowth ? { tupleGrowth } : {};
  }

  /**
   * Waits until the open window is `durationMs` old (or until `interrupted`),
   * keeping the watched namespaces current each STEP_MS, then closes it.
   */
  async measure(durationMs: number, o: MeasureOptions = {}): Promise<SnapshotV1> {
    if (!this.prev) throw new Error('LiveWindows.measure() before start()');
    return this.measureUntil(this.prev.monoMs + durationMs, o);
  }

  /** As measure(), to a fixed end on the monotonic clock (performance.now()): a series of windows does not drift by the time each sample takes. */
  async measureUntil(endMs: number, o: MeasureOptions = {}): Promise<SnapshotV1> {
    let stop = false;
    void o.interrupted?.then(() => {
      stop = true;
    });
    for (let left = endMs - performance.now(); left > 0 && !stop; left = endMs - performance.now()) {
      const step = sleepMs(Math.min(o.stepMs ?? STEP_MS, left));
      await (o.interrupted ? Promise.race([step, o.interrupted]) : step);
      const after = endMs - performance.now();
      if (!stop && after > 0) this.source.rescanIfDue?.();
      o.onStep?.(Math.max(0, after));
    }
    const w = this.next(o.occupancyAtEnd?.());
    if (!w) throw new Error('LiveWindows.measureUntil() before start()');
    return w;
  }

  close(): void {
    this.occupancy?.close();
    this.source.close();
  }
}

/** The sample before anything was counted: no namespaces, no rows, zero totals, at `s`'s time. */
function zeroed(s: Sample): Sample {
  const totals = { ...s.totals };
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] = 0;
  return { ...s, ports: [], tuples: [], events: [], namespaces: [], totals };
}
