/**
 * Where the screen's windows come from. The refresh clock calls next() once
 * per tick; a throw means the source failed this time (the screen says so
 * and the clock tries again a second later).
 */
import { buildSnapshot, type SnapshotV1 } from '../model/snapshot.js';
import type { Sample, Source } from '../model/sample.js';
import type { OccupancyFeed } from '../model/occupancy.js';

export interface WindowSource {
  /** "live" or "replay FILE", for the header. */
  readonly label: string;
  /** The next window; undefined when there is none yet (live: the first tick) or no more (replay: the end). */
  next(): SnapshotV1 | undefined;
  /** Replay position, for the header. */
  position?(): { index: number; total: number; ended: boolean };
  close(): void;
}

/**
 * Live: every tick takes one cumulative sample and turns the previous and
 * this one into a window. A failed sample keeps the previous one, so the
 * window after a failure spans it and no counts are lost.
 */
export class LiveWindows implements WindowSource {
  readonly label = 'live';
  private prev: Sample | undefined;
  /** the background census: who holds the table */
  private occupancy: OccupancyFeed | undefined;

  constructor(
    private readonly source: Source,
    private readonly where: { host: string; kernel: string },
  ) {}

  /** The census starts after the source: it needs the namespace the source resolved. */
  attachOccupancy(feed: OccupancyFeed | undefined): void {
    this.occupancy = feed;
  }

  /** Starts the source and takes the first sample, so the first tick already has a window. */
  async start(): Promise<void> {
    try {
      await this.source.start();
      this.prev = this.source.sample();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  next(): SnapshotV1 | undefined {
    const cur = this.source.sample();
    const prev = this.prev;
    this.prev = cur;
    if (!prev) return undefined;
    // top: 0 keeps every row, unsorted: the views rank and cut them themselves.
    return buildSnapshot(prev, cur, { ...this.where, top: 0, unsorted: true }, this.occupancy?.input());
  }

  /** Why the census failed, if it did: the screen says so where occupancy would be. */
  occupancyError(): string | undefined {
    return this.occupancy?.error();
  }

  close(): void {
    this.occupancy?.close();
    this.source.close();
  }
}
