/**
 * Bounded cardinality for per-port counters that never go down.
 *
 * A scrape sees each port's counter as one time series; if a port could drop
 * out of a "top K" label set and come back, its series would restart from
 * zero (a counter reset) and the `other` series would move backwards. So the
 * labelled set only grows: a port gets one of K slots the first time it is
 * seen with activity while slots are free (busiest first within one tick),
 * keeps it for the life of the process, and everything else is added to
 * `other` for good. A slot is given back only when the port's namespace is
 * gone (its series ends; nothing can count there any more). Pure.
 */

export interface Activity {
  inserts: number;
  drops: number;
}

export interface Assignment {
  /** Keys that have a slot, with this tick's activity. */
  labelled: Map<string, Activity>;
  /** Activity of everything without a slot, this tick. */
  other: Activity;
  /** Keys given a slot during this tick. */
  added: string[];
}

export class PortSlots {
  private readonly slots = new Set<string>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.slots.size;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  keys(): string[] {
    return [...this.slots];
  }

  /** Splits this tick's per-key activity (only keys with activity) into labelled and other. */
  assign(deltas: Map<string, Activity>): Assignment {
    const labelled = new Map<string, Activity>();
    const other: Activity = { inserts: 0, drops: 0 };
    const added: string[] = [];
    const newcomers: [string, Activity][] = [];
    for (const [key, a] of deltas) {
      if (a.inserts <= 0 && a.drops <= 0) continue;
      if (this.slots.has(key)) labelled.set(key, a);
      else newcomers.push([key, a]);
    }
    newcomers.sort(([ka, a], [kb, b]) => b.inserts + b.drops - (a.inserts + a.drops) || (ka < kb ? -1 : ka > kb ? 1 : 0));
    for (const [key, a] of newcomers) {
      if (this.slots.size < this.limit) {
        this.slots.add(key);
        added.push(key);
        labelled.set(key, a);
      } else {
        other.inserts += a.inserts;
        other.drops += a.drops;
      }
    }
    return { labelled, other, added };
  }

  /** Gives back the slots whose key matches; returns them (their series should be removed). */
  release(match: (key: string) => boolean): string[] {
    const gone = [...this.slots].filter(match);
    for (const k of gone) this.slots.delete(k);
    return gone;
  }
}
