/**
 * How long until the table is full at the current net growth (the live
 * screen: the last two windows; a recording fits a line instead,
 * ./projection.ts), and the one way ctop writes a time to full. The limit
 * (nf_conntrack_max) applies to each namespace's own count, so the fullest
 * namespace is the one that fills first. Pure: no I/O.
 */
import type { SnapshotV1 } from './snapshot.js';

/** The fullest namespace's count (the table's count when there is no namespace row). */
export function fullestCount(s: SnapshotV1): { inode: number | null; count: number } {
  let best: { inode: number | null; count: number } = { inode: null, count: -1 };
  for (const n of s.namespaces) if (n.count > best.count) best = { inode: n.inode, count: n.count };
  return best.inode === null ? { inode: null, count: s.table.count } : best;
}

/**
 * Net growth of the fullest namespace in entries per second between two
 * consecutive windows: inserts minus whatever made entries leave (timeouts,
 * closes, early drops), measured as the change of the count itself.
 * null when there is no previous window to compare with.
 */
export function netGrowthPerSec(prev: SnapshotV1 | undefined, cur: SnapshotV1): number | null {
  if (!prev) return null;
  const now = fullestCount(cur);
  const before =
    now.inode === null ? prev.table.count : (prev.namespaces.find((n) => n.inode === now.inode)?.count ?? null);
  if (before === null) return null; // the namespace is new: no earlier count to compare
  const seconds = cur.durationMs / 1000;
  return seconds > 0 ? (now.count - before) / seconds : null;
}

/**
 * Seconds until `count` reaches `max` at `netPerSec`; 0 when already full;
 * null ("never") when the table is not growing or nothing is known.
 */
export function timeToFullSec(count: number, max: number, netPerSec: number | null): number | null {
  if (max <= 0) return null;
  if (count >= max) return 0;
  if (netPerSec === null || !(netPerSec > 0)) return null;
  return (max - count) / netPerSec;
}

/** "never" (not growing), "full", "45s", "12m30s", "3h05m", "2d04h", ">999d": fits the live screen's header and a table cell alike. */
export function formatTimeToFull(sec: number | null): string {
  if (sec === null) return 'never';
  if (sec <= 0) return 'full';
  const s = Math.ceil(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  const d = Math.floor(s / 86_400);
  return d > 999 ? '>999d' : `${d}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}
