/**
 * Line charts as inline SVG text, drawn from the data at generation time: the
 * report needs no script and fetches nothing. Pure.
 */

export interface ChartSeries {
  name: string;
  /** One value per x; null leaves a gap (e.g. inserts in the statistics tier). */
  values: (number | null)[];
  color: string;
  dashed?: boolean;
}

export interface ChartSpec {
  /** Used in data-chart, for tests and styling. */
  id: string;
  title: string;
  /** x positions in ms since the epoch. */
  xs: number[];
  series: ChartSeries[];
  yLabel: string;
  formatY: (v: number) => string;
  /** A horizontal reference line (e.g. nf_conntrack_max). */
  reference?: { value: number; label: string };
  /** Lowest top of the y axis (e.g. 1 for a ratio). */
  minYMax?: number;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const W = 760;
const H = 260;
const PAD = { left: 70, right: 16, top: 28, bottom: 40 };

/** A "nice" axis top: 1, 2 or 5 times a power of ten at or above v. */
export function niceCeil(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function hhmmss(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

export function lineChart(c: ChartSpec): string {
  const n = c.xs.length;
  const x0 = c.xs[0] ?? 0;
  const x1 = c.xs[n - 1] ?? 1;
  const span = x1 - x0 || 1;
  let top = c.minYMax ?? 0;
  for (const s of c.series) for (const v of s.values) if (v !== null && Number.isFinite(v)) top = Math.max(top, v);
  if (c.reference) top = Math.max(top, c.reference.value);
  const yMax = niceCeil(top);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const px = (x: number): number => PAD.left + (n === 1 ? iw / 2 : ((x - x0) / span) * iw);
  const py = (y: number): number => PAD.top + ih - (Math.min(Math.max(y, 0), yMax) / yMax) * ih;
  const parts: string[] = [];
  parts.push(`<svg class="chart" data-chart="${esc(c.id)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(c.title)}">`);
  parts.push(`<text x="${PAD.left}" y="18" class="ctitle">${esc(c.title)}</text>`);
  // grid and y ticks
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const y = py(v);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${fmt(y)}" y2="${fmt(y)}" class="grid"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${fmt(y + 4)}" class="tick" text-anchor="end">${esc(c.formatY(v))}</text>`);
  }
  parts.push(`<text x="14" y="${PAD.top + ih / 2}" class="tick" transform="rotate(-90 14 ${PAD.top + ih / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`);
  // x ticks: first, middle, last (UTC clock time)
  const ticks = n > 2 ? [x0, x0 + span / 2, x1] : n === 2 ? [x0, x1] : [x0];
  for (const t of ticks) parts.push(`<text x="${fmt(px(t))}" y="${H - 22}" class="tick" text-anchor="middle">${hhmmss(t)}</text>`);
  parts.push(`<text x="${PAD.left + iw / 2}" y="${H - 6}" class="tick" text-anchor="middle">time (UTC)</text>`);
  if (c.reference) {
    const y = fmt(py(c.reference.value));
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" class="ref"/>`);
    parts.push(`<text x="${W - PAD.right - 4}" y="${fmt(Number(y) - 4)}" class="tick" text-anchor="end">${esc(c.reference.label)}</text>`);
  }
  c.series.forEach((s, si) => {
    // Split at nulls so a gap shows as a gap, not a line to zero.
    const runs: string[][] = [[]];
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) runs.push([]);
      else runs[runs.length - 1]!.push(`${fmt(px(c.xs[i] ?? x0))},${fmt(py(v))}`);
    });
    for (const r of runs.filter((r) => r.length > 0)) {
      if (r.length === 1) {
        const [x, y] = r[0]!.split(',');
        parts.push(`<circle cx="${x}" cy="${y}" r="3" fill="${esc(s.color)}" data-series="${esc(s.name)}"/>`);
      } else {
        parts.push(
          `<polyline fill="none" stroke="${esc(s.color)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${r.join(' ')}" data-series="${esc(s.name)}" data-points="${r.length}"/>`,
        );
      }
    }
    // legend
    const lx = PAD.left + 8 + (si % 3) * 230;
    const ly = PAD.top + 14 + Math.floor(si / 3) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="4" fill="${esc(s.color)}"/><text x="${lx + 16}" y="${ly - 4}" class="legend">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
