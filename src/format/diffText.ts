/** `ctop diff` as text: what moved, in the order an operator asks. */
import type { Change, SnapshotDiff } from '../model/diff.js';
import { formatTimeToFull } from '../model/timeToFull.js';
import { formatNumber, formatTable } from './table.js';
import { oneLine, percent } from '../util/text.js';
import { cleanLines } from '../util/sanitize.js';

function signed(n: number, fmt: (x: number) => string): string {
  return n > 0 ? `+${fmt(n)}` : n < 0 ? `-${fmt(-n)}` : '±0';
}

function line(label: string, c: Change<number>, fmt: (x: number) => string = formatNumber): string[] {
  return [label, fmt(c.a), fmt(c.b), signed(c.delta, fmt)];
}

function rateLine(label: string, c: Change<number | null>): string[] {
  const f = (x: number | null): string => (x === null ? 'n/a' : formatNumber(x));
  return [label, f(c.a), f(c.b), c.delta === null ? 'n/a' : signed(c.delta, formatNumber)];
}

const pct = (r: number): string => percent(r);

export function formatDiff(d: SnapshotDiff): string {
  const out: string[] = [];
  out.push(`A: ${oneLine(d.a.name, 200)}  (${d.a.windows} window(s), ${d.a.startedAt} … ${d.a.endedAt}, ${d.a.tier} tier, host ${oneLine(d.a.host, 80)})`);
  out.push(`B: ${oneLine(d.b.name, 200)}  (${d.b.windows} window(s), ${d.b.startedAt} … ${d.b.endedAt}, ${d.b.tier} tier, host ${oneLine(d.b.host, 80)})`);
  out.push('');
  const horizon = (s: number | null): string => (s === null ? 'not growing' : formatTimeToFull(s));
  out.push(
    formatTable(
      ['', 'A', 'B', 'change'],
      [
        line('entries (end)', d.table.count),
        line('entries (peak)', d.table.peakCount),
        line('fill, fullest netns (end)', d.table.fillRatio, pct),
        line('fill, fullest netns (peak)', d.table.peakFillRatio, pct),
        line('nf_conntrack_max', d.table.max),
        line('buckets', d.table.buckets),
        rateLine('inserts/s', d.rates.insertsPerSec),
        line('drops/s', d.rates.dropsPerSec),
        line('early drops/s', d.rates.earlyDropsPerSec),
        line('insert failed/s', d.rates.insertFailedPerSec),
        ['time to full', horizon(d.secondsToFull.a), horizon(d.secondsToFull.b), ''],
      ],
    ),
  );
  out.push('');
  const moved = d.ports.filter((p) => p.status !== 'steady');
  const steady = d.ports.length - moved.length;
  if (moved.length === 0) {
    out.push(`ports: no port appeared, vanished, grew or shrank by more than 10%${steady > 0 ? ` (${steady} steady)` : ''}`);
  } else {
    out.push(`ports that changed${steady > 0 ? ` (${steady} steady not shown)` : ''}:`);
    const f = (x: number | undefined): string | number => (x === undefined ? '-' : Math.round(x * 100) / 100);
    out.push(
      formatTable(
        ['change', 'netns', 'family', 'proto', 'port', 'A inserts/s', 'B inserts/s', 'A drops/s', 'B drops/s'],
        moved.map((p) => [p.status, String(p.netns), p.family, oneLine(p.proto, 20), String(p.port), f(p.a?.insertsPerSec), f(p.b?.insertsPerSec), f(p.a?.dropsPerSec), f(p.b?.dropsPerSec)]),
      ),
    );
  }
  out.push('');
  if (d.census.inA || d.census.inB) {
    if (!(d.census.inA && d.census.inB)) out.push(`census: only in ${d.census.inA ? 'A' : 'B'}`);
    else if (d.census.changed.length === 0) out.push('census: unchanged');
    else for (const c of d.census.changed) out.push(`census ${oneLine(c.key, 60)}: ${c.a ?? '-'} → ${c.b ?? '-'}`);
  }
  // Every field above came from a recording someone handed over: one cleaner for the whole text.
  return cleanLines(out.join('\n'));
}
