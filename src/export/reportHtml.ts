/**
 * `ctop report`: one self-contained HTML page from a recording. Charts are
 * inline SVG drawn here; there is no script, and a Content-Security-Policy of
 * default-src 'none' makes the browser refuse any fetch a future edit might
 * add. Every string from the file is escaped. Pure.
 */
import type { Recording } from '../model/recording.js';
import { netnsNames, points, portLabel, portRateSeries, summarize } from '../model/series.js';
import { formatTimeToFull } from '../model/timeToFull.js';
import { sizing } from '../model/sizing.js';
import { esc, lineChart } from './svgChart.js';

/** Ports drawn in the ports chart (the table lists more). */
const CHART_PORTS = 5;
const TABLE_PORTS = 20;

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const dec = (n: number): string => (Math.round(n * 10) / 10).toLocaleString('en-US', { maximumFractionDigits: 1 });
const pct = (r: number): string => `${(r * 100).toFixed(1)}%`;

function table(head: string[], rows: string[][], cls: string): string {
  return `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555} .figures td:first-child{color:#555;padding-right:16px}
table{border-collapse:collapse;margin:8px 0} th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #eee}
td:not(:first-child){font-variant-numeric:tabular-nums}
.chart{display:block;margin:10px 0;background:#fafafa;border:1px solid #eee}
.ctitle{font-weight:600;font-size:13px} .tick,.legend{font-size:11px;fill:#555}
.grid{stroke:#e4e4e4} .ref{stroke:#d62728;stroke-dasharray:3 3}
.note{color:#666;font-size:12px}
`;

export function reportHtml(file: string, rec: Recording): string {
  const snaps = rec.snapshots;
  const s = summarize(snaps);
  const pts = points(snaps);
  const xs = pts.map((p) => p.endMs);
  const names = netnsNames(snaps);
  const label = (p: { netns: number; family: string; proto: string; port: number }): string =>
    portLabel(p as Parameters<typeof portLabel>[0], names.get(p.netns));

  const fillChart = lineChart({
    id: 'fill',
    title: 'Fill of the fullest namespace (entries ÷ nf_conntrack_max)',
    xs,
    series: [{ name: 'fill', values: pts.map((p) => p.fillRatio * 100), color: COLORS[0]! }],
    yLabel: '% of max',
    formatY: (v) => `${Math.round(v)}%`,
    reference: { value: 100, label: `max ${int(s.max)}` },
    minYMax: 10,
  });
  const rateChart = lineChart({
    id: 'rates',
    title: 'Rates per second',
    xs,
    series: [
      { name: 'inserts/s', values: pts.map((p) => p.insertsPerSec), color: COLORS[0]! },
      { name: 'drops/s', values: pts.map((p) => p.dropsPerSec), color: COLORS[1]! },
      { name: 'early drops/s', values: pts.map((p) => p.earlyDropsPerSec), color: COLORS[3]!, dashed: true },
    ],
    yLabel: 'per second',
    formatY: dec,
  });
  const top = s.ports.slice(0, CHART_PORTS);
  const perPort = portRateSeries(snaps, top.map((p) => p.key));
  const portChart =
    top.length > 0
      ? lineChart({
          id: 'ports',
          title: `Top ${top.length} port(s) by inserts per second`,
          xs,
          series: top.map((p, i) => ({ name: label(p), values: perPort.get(p.key) ?? [], color: COLORS[i % COLORS.length]! })),
          yLabel: 'inserts/s',
          formatY: dec,
        })
      : `<p class="note" data-chart="ports-empty">No per-port data: ${s.tier === 'stats' ? 'the statistics tier sees no ports' : 'no port had new entries during the recording'}.</p>`;

  const p = s.projection;
  const horizon = p.full ? 'the table is full now' : p.secondsToFull === null ? 'not growing: no projection' : p.secondsToFull === 0 ? 'at the limit by this trend' : `about ${formatTimeToFull(p.secondsToFull)} at this trend`;

  const z = sizing({
    max: s.max,
    buckets: s.buckets,
    count: s.fullestCount.last,
    peakCount: s.fullestCount.peak,
    ...(rec.header.memTotalBytes !== undefined ? { memTotalBytes: rec.header.memTotalBytes } : {}),
    ...(rec.header.wordBits === 32 || rec.header.wordBits === 64 ? { wordBits: rec.header.wordBits } : {}),
  });

  const figures: string[][] = [
    ['fill now (fullest namespace)', `${pct(s.fillRatio.last)} (${int(s.fullestCount.last)} of ${int(s.max)})`],
    ['peak fill', `${pct(s.fillRatio.peak)} (${int(s.fullestCount.peak)})`],
    ['entries, all namespaces (end / peak)', `${int(s.count.last)} / ${int(s.count.peak)}`],
    ['inserts per second (mean)', s.rates.insertsPerSec === null ? 'n/a (statistics tier)' : dec(s.rates.insertsPerSec)],
    ['drops per second (mean)', dec(s.rates.dropsPerSec)],
    ['early drops per second (mean)', dec(s.rates.earlyDropsPerSec)],
    ['time to full', horizon],
  ];

  const portRows = s.ports.slice(0, TABLE_PORTS).map((x) => [
    names.get(x.netns) ?? String(x.netns), x.family, x.proto, String(x.port), int(x.inserts), dec(x.insertsPerSec), int(x.drops), dec(x.dropsPerSec),
  ]);

  const census =
    s.census === undefined
      ? ''
      : `<h2>Census</h2>${table(
          ['figure', 'value'],
          Object.entries(s.census)
            .filter(([, v]) => typeof v === 'number' || typeof v === 'string')
            .slice(0, 100)
            .map(([k, v]) => [k, String(v).slice(0, 200)]),
          'census',
        )}`;

  const sizingRows: string[][] = [
    ['nf_conntrack_max (recorded)', int(z.max)],
    ['nf_conntrack_buckets (recorded)', int(z.buckets)],
    ['entries, fullest namespace (end / peak)', `${int(z.count)} / ${int(z.peakCount)}`],
    ['fill (end / peak)', `${pct(z.fillRatio)} / ${pct(z.peakFillRatio)}`],
    ['entries per bucket at peak', dec(z.peakEntriesPerBucket)],
  ];
  const defaults = table(
    ['RAM', "the kernel's formula: RAM / 16384 / (word bits / 32)", 'peak entries as share of it'],
    z.rows.map((r) => [r.label, int(r.defaultMax), pct(r.peakFillOfDefault)]),
    'defaults',
  );

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ctop report">
<title>ctop report: ${esc(s.host)}</title>
<style>${CSS}</style></head>
<body>
<h1>Conntrack capacity report: ${esc(s.host)}</h1>
<p class="meta" id="meta">kernel ${esc(s.kernel)} · ${esc(s.tier)} tier · <span id="windows">${s.windows}</span> window(s) of ${esc(dec(rec.header.everyMs / 1000))} s · ${esc(s.startedAt)} to ${esc(s.endedAt)} · from ${esc(file)}</p>
<h2>Key figures</h2>
${table(['', ''], figures, 'figures')}
<h2>Fill</h2>
${fillChart}
<p class="note" id="projection">Time to full: <b>${esc(horizon)}</b>${p.points >= 2 ? ` (least-squares line over ${p.points} windows, ${dec(p.slopePerSec)} entries/s)` : ''}.</p>
<h2>Rates</h2>
${rateChart}
<h2>Top ports</h2>
${portChart}
${portRows.length > 0 ? table(['netns', 'family', 'proto', 'port', 'inserts', 'inserts/s', 'drops', 'drops/s'], portRows, 'ports') : ''}
<p class="note">Each window lists its busiest ports only; a port's total counts the windows where it made the list.</p>
${census}
<h2>Sizing</h2>
${table(['', ''], sizingRows, 'sizing')}
<p class="note">The kernel's default formula: max = RAM / 16384 / (word size / 32), one entry per bucket (${z.rows.some((r) => r.label.startsWith('recording host')) ? 'the recording host first, then' : 'the recording did not say its RAM;'} common sizes). Kernels clamp the automatic value and distributions often set their own.</p>
${defaults}
</body></html>
`;
}
