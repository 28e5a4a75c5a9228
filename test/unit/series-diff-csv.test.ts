import { describe, expect, it } from 'vitest';
import { parseRecording } from '../../src/io/recording.js';
import { points, portTotals, summarize } from '../../src/model/series.js';
import type { CensusReport } from '../../src/model/census.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { diffSummaries, portStatus } from '../../src/model/diff.js';
import { formatDiff } from '../../src/format/diffText.js';
import { csvField, portsCsv, windowsCsv } from '../../src/export/csv.js';
import { makeSnapshots, recordingText } from './recordingFixture.js';

describe('series and summary', () => {
  const snaps = makeSnapshots(6);
  it('one point per window, with the fullest namespace and rates', () => {
    const p = points(snaps);
    expect(p).toHaveLength(6);
    expect(p.map((x) => x.fullestCount)).toEqual([150, 200, 250, 300, 350, 400]);
    expect(p[0]).toMatchObject({ durationMs: 1000, max: 1000, fillRatio: 0.15, insertsPerSec: 110 });
    expect(p[5]!.endMs - p[0]!.endMs).toBe(5000);
  });
  it('per-port totals and rates over the whole recording, busiest first', () => {
    const t = portTotals(snaps);
    expect(t.map((x) => [x.port, x.inserts, x.insertsPerSec, x.windows])).toEqual([
      [53, 600, 100, 6],
      [443, 210, 35, 6],
    ]);
  });
  it('summary: peaks, mean rates and a 50 entries/s climb to 1000', () => {
    const s = summarize(snaps);
    expect(s).toMatchObject({ windows: 6, max: 1000, count: { last: 400, peak: 400 }, fillRatio: { last: 0.4, peak: 0.4 } });
    expect(s.rates.insertsPerSec).toBe(135);
    expect(s.projection.slopePerSec).toBeCloseTo(50, 9);
    expect(s.projection.secondsToFull).toBeCloseTo(12, 9);
    expect(s.census).toBeUndefined();
  });
});

describe('diff', () => {
  // only the figures the diff reads; a real census has every section
  const census = (entries: number, assured: number): CensusReport => ({ entries, assured, unreplied: 1 }) as CensusReport;
  const withCensus = (snaps: SnapshotV1[], c: CensusReport): SnapshotV1[] => snaps.map((s) => ({ ...s, census: c }));
  const a = summarize(makeSnapshots(4, { port443: false }));
  const b = summarize(withCensus(makeSnapshots(4, { drops: true }), census(7, 3)));

  it('ports that appeared, and the port that stayed steady; a census that appeared', () => {
    const d = diffSummaries('a', a, 'b', b);
    expect(d.ports.map((p) => [p.port, p.status])).toEqual([
      [443, 'appeared'],
      [53, 'steady'],
    ]);
    expect(d.rates.dropsPerSec).toEqual({ a: 0, b: 2, delta: 2 });
    expect(d.census).toEqual({ inA: false, inB: true, changed: [] });
    const back = diffSummaries('b', b, 'a', a);
    expect(back.ports.map((p) => [p.port, p.status])).toEqual([
      [443, 'vanished'],
      [53, 'steady'],
    ]);
    expect(back.census).toEqual({ inA: true, inB: false, changed: [] });
  });

  it('grew and shrank at more than 10%', () => {
    const side = (r: number) => ({ inserts: r, drops: 0, insertsPerSec: r, dropsPerSec: 0 });
    expect(portStatus(side(100), side(111))).toBe('grew');
    expect(portStatus(side(100), side(110))).toBe('steady');
    expect(portStatus(side(100), side(90))).toBe('shrank');
    expect(portStatus(null, side(1))).toBe('appeared');
    expect(portStatus(side(1), null)).toBe('vanished');
  });

  it('census entry counts that moved', () => {
    const d = diffSummaries('b', b, 'c', summarize(withCensus(makeSnapshots(2), census(9, 3))));
    expect(d.census.changed).toEqual([{ key: 'entries', a: 7, b: 9 }]);
    const t = formatDiff(d);
    expect(t).toMatch(/census entries: 7 → 9/);
    expect(t).not.toMatch(/census assured/);
  });

  it('text: the table of figures, the ports that changed, the census', () => {
    const t = formatDiff(diffSummaries('a.jsonl', a, 'b.jsonl', b));
    expect(t).toMatch(/^A: a\.jsonl {2}\(4 window\(s\)/);
    expect(t).toMatch(/drops\/s\s+0\s+2\s+\+2/);
    expect(t).toMatch(/appeared\s+4026531840\s+ipv4\s+udp\s+443\s+-\s+25/);
    expect(t).toMatch(/1 steady not shown/);
    expect(t).toMatch(/census: only in B/);
    const none = formatDiff(diffSummaries('a', a, 'a', a));
    expect(none).toMatch(/ports: no port appeared, vanished, grew or shrank by more than 10% \(1 steady\)/);
    expect(none).not.toMatch(/census/);
  });
});

describe('CSV', () => {
  const snaps = makeSnapshots(3);
  it('one row per window, stable columns', () => {
    const lines = windowsCsv(snaps).trimEnd().split('\n');
    expect(lines[0]).toBe('window_start,window_end,duration_ms,entries,fullest_netns_entries,max,buckets,fill_ratio,inserts_per_sec,drops_per_sec,early_drops_per_sec,insert_failed_per_sec,inserts,drops');
    expect(lines[1]).toBe('2026-11-25T10:00:00.000Z,2026-11-25T10:00:01.000Z,1000,150,150,1000,1024,0.15,110,0,0,0,110,0');
    expect(lines).toHaveLength(4);
  });
  it('ports in long format', () => {
    const lines = portsCsv(snaps).trimEnd().split('\n');
    expect(lines[0]).toBe('window_start,netns,family,proto,port,inserts,drops,inserts_per_sec,drops_per_sec');
    expect(lines[1]).toBe('2026-11-25T10:00:00.000Z,4026531840,ipv4,udp,53,100,0,100,0');
    expect(lines).toHaveLength(7);
  });
  it('quotes what needs quoting, including spreadsheet formulas', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('=cmd()')).toBe("'=cmd()");
    expect(csvField(null)).toBe('');
    expect(csvField(-3)).toBe('-3');
  });
  it('round trip: the recording text reads back to the same CSV', () => {
    const rec = parseRecording('r', recordingText(snaps));
    expect(windowsCsv(rec.snapshots)).toBe(windowsCsv(snaps));
  });
});
