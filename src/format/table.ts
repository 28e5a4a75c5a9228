import { cleanText } from '../util/sanitize.js';

/**
 * Plain-text columns for reports: right-aligns numbers, left-aligns text.
 * Every text cell goes through cleanText (names come from other users);
 * widths are found by a loop, since spreading ~125k rows into Math.max
 * overflows the call stack.
 */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header.map((h) => cleanText(h, Infinity)), ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : cleanText(c, Infinity))))];
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const widths = header.map(() => 0);
  for (const r of cells) for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, (r[i] ?? '').length);
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
}

