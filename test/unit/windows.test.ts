/**
 * The window pipeline (source/windows.ts) on a fake source: each window runs
 * from the end of the one before, the tuple window is taken once per window,
 * a failed sample is spanned by the next window, and measure() keeps time.
 */
import { describe, expect, it } from 'vitest';
import { LiveWindows } from '../../src/source/windows.js';
import { mergeWindows } from '../../src/model/mergeWindows.js';
import { buildSnapshot } from '../../src/model/snapshot.js';
import { ZERO_STATS, type Sample, type Source, type TupleCount } from '../../src/model/sample.js';
import { portCount, sample } from '../support/sample.js';

const tuple = { netns: 1, family: 'ipv4' as const, proto: 'udp', protoNum: 17, src: '198.18.0.1', sport: 40000, dst: '198.18.0.2', dport: 53 };
const port = (inserts: number) => portCount({ netns: 1, family: 'ipv4', proto: 17, port: 53, inserts, drops: 0 });

/** Cumulative port counts and tuple growth as scripted; records what the pipeline asked for. */
class FakeSource implements Source {
  calls: string[] = [];
  private n = 0;
  fail = false;
  constructor(private readonly insertsAt: (n: number) => number) {}
  async start(): Promise<void> {
    this.calls.push('start');
  }
  sample(): Sample {
    if (this.fail) throw new Error('read failed');
    this.calls.push('sample');
    const n = this.n++;
    const inserts = this.insertsAt(n);
    return sample({
      monoMs: performance.now(),
      ports: [port(inserts)],
      totals: { ...sample().totals, inserts },
      namespaces: [{ inode: 1, name: 'host', count: n, stats: { ...ZERO_STATS, insert: inserts, drop: n }, links: 4 }],
    });
  }
  takeTupleGrowth(): TupleCount[] {
    this.calls.push('tuples');
    return [{ ...tuple, inserts: this.n, drops: 0 }];
  }
  rescanIfDue(): void {
    this.calls.push('rescan');
  }
  close(): void {
    this.calls.push('close');
  }
}

const where = { host: 'h', kernel: '6.18' };

describe('LiveWindows', () => {
  it('each window starts where the last ended; the tuple growth is taken once per window, at its ends', async () => {
    const src = new FakeSource((n) => [5, 12, 30][n] ?? 0);
    const live = new LiveWindows(src, where, { top: 0 });
    expect(live.next()).toBeUndefined();
    const first = await live.start();
    expect(first.totals.inserts).toBe(5);
    const w1 = live.next()!;
    const w2 = live.next()!;
    expect([w1.totals.inserts, w2.totals.inserts]).toEqual([7, 18]);
    expect(w1.ports.map((p) => p.inserts)).toEqual([7]);
    // the growth taken at start() belongs to no window; each window gets the growth taken at its end
    expect(w1.tuples.map((t) => t.inserts)).toEqual([2]);
    expect(w2.tuples.map((t) => t.inserts)).toEqual([3]);
    expect(src.calls).toEqual(['start', 'sample', 'tuples', 'sample', 'tuples', 'sample', 'tuples']);
    live.close();
    expect(src.calls.at(-1)).toBe('close');
  });

  it('a failed sample keeps the open window: the next window spans the failure, nothing is lost', async () => {
    const src = new FakeSource((n) => 10 * n);
    const live = new LiveWindows(src, where, { top: 0 });
    await live.start();
    src.fail = true;
    expect(() => live.next()).toThrow(/read failed/);
    src.fail = false;
    expect(live.next()!.totals.inserts).toBe(10);
  });

  it('without tuples, the tuple maps are never read; fromZero starts the first window at zero', async () => {
    const src = new FakeSource((n) => 100 + n);
    const live = new LiveWindows(src, where, { top: 0, tuples: false, fromZero: true });
    await live.start();
    const w = live.next()!;
    // everything the kernel counted before start: the inserts and each statistic, as cumulative values
    expect(w.totals.inserts).toBe(101);
    expect(w.namespaces[0]!.stats).toMatchObject({ insert: 101, drop: 1 });
    expect(w.tuples).toEqual([]);
    expect(src.calls).not.toContain('tuples');
  });

  it('measure() closes the window after the time asked, keeping the namespaces current in between; interrupted, at once', async () => {
    const src = new FakeSource((n) => n);
    const live = new LiveWindows(src, where, { top: 0 });
    await live.start();
    const t0 = performance.now();
    const left: number[] = [];
    const w = await live.measure(120, { stepMs: 50, onStep: (ms) => left.push(ms) });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    expect(w.durationMs).toBeGreaterThanOrEqual(115);
    // every step with time left rescans (at least at ~50 and ~100 ms); the last ends the window and does not
    expect(left.at(-1)).toBe(0);
    expect(left.filter((ms) => ms > 0).length).toBeGreaterThanOrEqual(2);
    expect(src.calls.filter((c) => c === 'rescan')).toHaveLength(left.filter((ms) => ms > 0).length);
    const stop = Promise.resolve();
    const t1 = performance.now();
    await live.measure(60_000, { interrupted: stop });
    expect(performance.now() - t1).toBeLessThan(1000);
    await expect(new LiveWindows(src, where).measure(10)).rejects.toThrow(/before start/);
  });
});

describe('mergeWindows', () => {
  it('sums counts, keeps the last states, and equals the one long window when the rows all fit', async () => {
    const src = new FakeSource((n) => [0, 4, 9, 20][n] ?? 0);
    const live = new LiveWindows(src, where, { top: 0 });
    await live.start();
    const ws = [live.next()!, live.next()!, live.next()!];
    const m = mergeWindows(ws, 20);
    expect(m.totals.inserts).toBe(20);
    expect(m.ports.map((p) => [p.port, p.inserts])).toEqual([[53, 20]]);
    expect(m.durationMs).toBe(ws.reduce((a, w) => a + w.durationMs, 0));
    expect(m.startedAt).toBe(ws[0]!.startedAt);
    expect(m.namespaces[0]).toMatchObject({ count: 3, inserts: 20, drops: 3 });
    expect(m.namespaces[0]!.stats).toMatchObject({ insert: 20, drop: 3 });
    expect(mergeWindows([ws[0]!], 20)).toEqual({ ...ws[0]!, overflow: { ...ws[0]!.overflow } });
  });

  it('keeps the top rows across windows and counts the rest as omitted', () => {
    const ports = (rows: [number, number][]) => rows.map(([p, inserts]) => ({ ...port(inserts), port: p }));
    const a = sample();
    const w1 = buildSnapshot(a, sample({ monoMs: 1000, ports: ports([[1, 5], [2, 1]]) }), { ...where, top: 0 });
    const w2 = buildSnapshot(a, sample({ monoMs: 1000, ports: ports([[2, 5], [3, 2]]) }), { ...where, top: 0 });
    const m = mergeWindows([w1, w2], 2);
    expect(m.ports.map((p) => [p.port, p.inserts])).toEqual([[2, 6], [1, 5]]);
    expect(m.overflow.portsOmitted).toBe(1);
    expect(mergeWindows([w1, w2], 0).ports).toHaveLength(3);
  });
});
