/**
 * CSV export of a recording (RFC 4180: comma-separated, CRLF-free "\n" lines,
 * fields quoted when they hold a comma, quote or newline). Pure.
 *
 *  windows: one row per window: time, counts, limits, fill and rates.
 *  ports:   long format, one row per (window, port) the window listed.
 */
import type { SnapshotV1 } from '../model/snapshot.js';
import { points } from '../model/series.js';
import { csvCell } from '../util/sanitize.js';

const WINDOW_COLUMNS = [
  'window_start', 'window_end', 'duration_ms', 'entries', 'fullest_netns_entries', 'max', 'buckets', 'fill_ratio',
  'inserts_per_sec', 'drops_per_sec', 'early_drops_per_sec', 'insert_failed_per_sec', 'inserts', 'drops',
] as const;

const PORT_COLUMNS = ['window_start', 'netns', 'family', 'proto', 'port', 'inserts', 'drops', 'inserts_per_sec', 'drops_per_sec'] as const;

/** One cell: quoted where RFC 4180 needs it, a text cell that reads as a formula neutralised (src/util/sanitize.ts). */
export const csvField = csvCell;

function rows(header: readonly string[], body: (string | number | null)[][]): string {
  return [header.join(','), ...body.map((r) => r.map(csvField).join(','))].join('\n') + '\n';
}

const rate = (n: number, ms: number): number => Math.round((n * 1000 * 100) / ms) / 100;

export function windowsCsv(snaps: readonly SnapshotV1[]): string {
  return rows(
    WINDOW_COLUMNS,
    points(snaps).map((p) => [
      p.startedAt, new Date(p.endMs).toISOString(), p.durationMs, p.count, p.fullestCount, p.max, p.buckets, p.fillRatio,
      p.insertsPerSec, p.dropsPerSec, p.earlyDropsPerSec, p.insertFailedPerSec, p.inserts, p.drops,
    ]),
  );
}

export function portsCsv(snaps: readonly SnapshotV1[]): string {
  const body: (string | number)[][] = [];
  for (const s of snaps) {
    for (const p of s.ports) {
      body.push([s.startedAt, p.netns, p.family, p.proto, p.port, p.inserts, p.drops, rate(p.inserts, s.durationMs), rate(p.drops, s.durationMs)]);
    }
  }
  return rows(PORT_COLUMNS, body);
}
