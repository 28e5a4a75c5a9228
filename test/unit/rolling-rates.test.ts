/** 10 s and 60 s rates: a one-window burst stays visible for a minute, then leaves. */
import { describe, expect, it } from 'vitest';
import { RollingRates } from '../../src/model/rollingRates.js';
import { emptyModel, updateModel, type TuiModel } from '../../src/tui/model.js';
import { selectRows } from '../../src/tui/talkers.js';
import { EMPTY_FILTER } from '../../src/tui/filter.js';
import { BURST_INSERTS, BURST_PORT, burstWindow } from '../support/tuiFixtures.js';

describe('rolling rates', () => {
  it('sums each span over the windows that cover it, by their durations', () => {
    const r = new RollingRates<string>();
    const push = (ms: number, a: number, b: number): void => r.push(ms, [{ key: 'a', inserts: a, drops: 0, meta: 'A' }, { key: 'b', inserts: b, drops: 1, meta: 'B' }]);
    for (let i = 0; i < 4; i++) push(1000, 100, i === 2 ? 5000 : 0);
    // four seconds covered so far: rates over what is covered
    expect(r.coveredSec()).toEqual([4, 4]);
    expect(r.rates('a').insertsPerSec).toEqual([100, 100]);
    expect(r.rates('b').insertsPerSec).toEqual([1250, 1250]);
    expect(r.rates('b').dropsPerSec).toEqual([1, 1]);
    for (let i = 0; i < 8; i++) push(1000, 100, 0);
    // 12 windows: the 10 s span holds windows 3..12 (the burst was window 3), the 60 s span all
    expect(r.coveredSec()).toEqual([10, 12]);
    expect(r.rates('b').insertsPerSec).toEqual([500, 5000 / 12]);
    push(1000, 100, 0);
    expect(r.rates('b').insertsPerSec[0]).toBe(0);
    // a long window (a pause) counts for its whole duration
    push(30_000, 3000, 0);
    expect(r.coveredSec()[0]).toBe(30);
    expect(r.rates('a').insertsPerSec[0]).toBe(100);
    for (let i = 0; i < 60; i++) push(1000, 0, 0);
    expect(r.rates('b').insertsPerSec).toEqual([0, 0]);
    // b still drops one a second: listed; a moved not at all in the last minute: gone
    expect([...r.active()]).toEqual([['b', 'B']]);
  });

  it('the ports view keeps a burst for a minute: 10 s column for 10 windows, 60 s for 60, then the row leaves', () => {
    let m: TuiModel = emptyModel();
    const burstAt = 5;
    const row = (): { ins: number | null; spans: number[] | null } | undefined => {
      const r = selectRows(m.current!, 'ports', 'inserts', EMPTY_FILTER, 50, m.rolling).rows.find((x) => x.label === `udp ${BURST_PORT}`);
      return r && { ins: r.insertsPerSec, spans: r.spanInsertsPerSec };
    };
    for (let i = 0; i <= burstAt; i++) m = updateModel(m, burstWindow(i, burstAt));
    expect(row()).toEqual({ ins: BURST_INSERTS, spans: [BURST_INSERTS / 6, BURST_INSERTS / 6] });
    for (let i = burstAt + 1; i < burstAt + 10; i++) m = updateModel(m, burstWindow(i, burstAt));
    expect(row()).toEqual({ ins: 0, spans: [BURST_INSERTS / 10, BURST_INSERTS / 15] });
    m = updateModel(m, burstWindow(burstAt + 10, burstAt));
    expect(row()).toEqual({ ins: 0, spans: [0, BURST_INSERTS / 16] });
    // sorted by the 60 s rate, the burst port leads though it is quiet now
    expect(selectRows(m.current!, 'ports', 'inserts60', EMPTY_FILTER, 1, m.rolling).rows[0]!.label).toBe(`udp ${BURST_PORT}`);
    for (let i = burstAt + 11; i < burstAt + 60; i++) m = updateModel(m, burstWindow(i, burstAt));
    expect(row()).toEqual({ ins: 0, spans: [0, BURST_INSERTS / 60] });
    m = updateModel(m, burstWindow(burstAt + 60, burstAt));
    expect(row()).toBeUndefined();
  });
});
