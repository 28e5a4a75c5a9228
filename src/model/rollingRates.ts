/**
 * Rates over the last 10 s and 60 s beside each window's own, per key (a
 * port, a namespace), as iftop shows them: a burst that lasted one window
 * stays visible for a minute. Windows are kept newest last, only with the
 * keys that moved in them; each span's sums are updated as a window enters
 * and as the oldest leaves, so a window costs a pass over its own keys.
 * Spans are measured in the windows' own durations (a replay or a window
 * spanning a pause counts what it covers). No I/O.
 */

/** The spans the screen shows beside each window's rate, in seconds. */
export const SPANS_S = [10, 60] as const;

interface Window {
  durationMs: number;
  keys: string[];
  inserts: number[];
  drops: number[];
}

interface Span {
  spanMs: number;
  /** index into `windows` of the oldest window inside the span */
  from: number;
  durationMs: number;
  inserts: Map<string, number>;
  drops: Map<string, number>;
}

export interface SpanRates {
  /** per second over each span of SPANS_S; null before any window */
  insertsPerSec: number[];
  dropsPerSec: number[];
}

function add(m: Map<string, number>, k: string, v: number): void {
  if (v === 0) return;
  const n = (m.get(k) ?? 0) + v;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

export class RollingRates<Meta> {
  private windows: Window[] = [];
  private readonly spans: Span[] = SPANS_S.map((s) => ({ spanMs: s * 1000, from: 0, durationMs: 0, inserts: new Map(), drops: new Map() }));
  /** what each key stands for (a port row's identity), kept while any span holds the key */
  private readonly meta = new Map<string, Meta>();

  /** One window: every key that moved in it, with its counts. */
  push(durationMs: number, rows: Iterable<{ key: string; inserts: number; drops: number; meta: Meta }>): void {
    const w: Window = { durationMs, keys: [], inserts: [], drops: [] };
    for (const r of rows) {
      if (r.inserts === 0 && r.drops === 0) continue;
      w.keys.push(r.key);
      w.inserts.push(r.inserts);
      w.drops.push(r.drops);
      this.meta.set(r.key, r.meta);
    }
    this.windows.push(w);
    for (const s of this.spans) {
      s.durationMs += w.durationMs;
      for (let i = 0; i < w.keys.length; i++) {
        add(s.inserts, w.keys[i]!, w.inserts[i]!);
        add(s.drops, w.keys[i]!, w.drops[i]!);
      }
      // keep the newest windows that cover the span: drop the oldest while the rest still do
      while (s.from < this.windows.length - 1 && s.durationMs - this.windows[s.from]!.durationMs >= s.spanMs) {
        const old = this.windows[s.from]!;
        for (let i = 0; i < old.keys.length; i++) {
          add(s.inserts, old.keys[i]!, -old.inserts[i]!);
          add(s.drops, old.keys[i]!, -old.drops[i]!);
        }
        s.durationMs -= old.durationMs;
        s.from++;
      }
    }
    // windows no span needs any more
    const keepFrom = Math.min(...this.spans.map((s) => s.from));
    if (keepFrom > 64) {
      this.windows = this.windows.slice(keepFrom);
      for (const s of this.spans) s.from -= keepFrom;
    }
    const longest = this.spans[this.spans.length - 1]!;
    for (const k of this.meta.keys()) if (!longest.inserts.has(k) && !longest.drops.has(k)) this.meta.delete(k);
  }

  /** The key's rates over each span (0 where it did not move). */
  rates(key: string): SpanRates {
    return {
      insertsPerSec: this.spans.map((s) => (s.durationMs > 0 ? ((s.inserts.get(key) ?? 0) * 1000) / s.durationMs : 0)),
      dropsPerSec: this.spans.map((s) => (s.durationMs > 0 ? ((s.drops.get(key) ?? 0) * 1000) / s.durationMs : 0)),
    };
  }

  /** Every key that moved within the longest span, with what it stands for. */
  active(): IterableIterator<[string, Meta]> {
    return this.meta.entries();
  }

  /** Seconds each span covers now (shorter than the span until enough windows came). */
  coveredSec(): number[] {
    return this.spans.map((s) => s.durationMs / 1000);
  }
}
