import { describe, expect, it } from 'vitest';
import { parseRecording } from '../../src/io/recording.js';
import { reportHtml } from '../../src/export/reportHtml.js';
import { lineChart, niceCeil } from '../../src/export/svgChart.js';
import { makeSnapshots, recordingText } from './recordingFixture.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';

describe('report HTML', () => {
  const rec = parseRecording('rec.jsonl', recordingText(makeSnapshots(6)));
  const html = reportHtml('rec.jsonl', rec);

  it('is self-contained: no script, no URL, a CSP that forbids fetches', () => {
    expect(html).not.toMatch(/https?:|<script|<link|src=|@import|url\(/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
  });
  it('has the three charts with one point per window, the projection, sizing', () => {
    expect(html).toMatch(/data-series="fill" data-points="6"/);
    expect(html).toMatch(/data-series="inserts\/s" data-points="6"/);
    expect(html).toMatch(/data-series="udp\/53 ipv4 host" data-points="6"/);
    expect(html).toMatch(/Time to full: <b>about 12s at this trend<\/b> \(least-squares line over 6 windows, 50 entries\/s\)/);
    expect(html).not.toContain('<h2>Census</h2>');
    expect(html).toMatch(/<td>64 GiB<\/td><td>2,097,152<\/td>/);
    expect(html).toMatch(/<td>recording host \(16 GiB\)<\/td><td>524,288<\/td>/);
  });
  it('escapes everything that came from the file', () => {
    const evil = makeSnapshots(2).map((s) => ({
      ...s,
      host: '<script>alert(1)</script>',
      namespaces: s.namespaces.map((n) => ({ ...n, name: '"><img src=x onerror=alert(1)>' })),
      census: { '<k>': '<v>', takenAt: '</td><script>', entries: 3, assured: 1, unreplied: 0 },
    }));
    const out = reportHtml('<file>.jsonl', parseRecording('f', recordingText(evil as unknown as SnapshotV1[])));
    expect(out).not.toMatch(/<script|<img|<k>|<v>|<file>/);
    expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(out).toMatch(/<h2>Census<\/h2>.*<td>entries<\/td><td>3<\/td>/s);
  });
  it('a single snapshot, a stats-tier recording and one without ports still render', () => {
    const one = makeSnapshots(1);
    expect(reportHtml('s.json', parseRecording('s.json', JSON.stringify(one[0], null, 2)))).toMatch(/<circle /);
    const stats = makeSnapshots(3).map((s) => ({ ...s, ports: [], rates: { ...s.rates, insertsPerSec: null }, totals: { ...s.totals, inserts: null } }));
    const out = reportHtml('x', parseRecording('x', recordingText(stats)));
    expect(out).toContain('data-chart="ports-empty"');
    expect(out).toContain('n/a (statistics tier)');
  });
  it('axis tops are round numbers', () => {
    expect([0, 0.3, 1, 7, 12, 99, 101, 4500].map(niceCeil)).toEqual([1, 0.5, 1, 10, 20, 100, 200, 5000]);
    expect(lineChart({ id: 'x', title: 't', xs: [], series: [], yLabel: 'y', formatY: String })).toMatch(/^<svg/);
  });
});
