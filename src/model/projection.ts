/**
 * Time-to-full over a recording: a straight line fitted (least squares) to
 * the fullest namespace's entry count over the recording, extended to
 * nf_conntrack_max. Pure. A line is what a recording of minutes can support;
 * it says "at this trend", not "this will happen". The live screen has only
 * the last two windows and uses their growth instead (./timeToFull.ts, which
 * also formats both).
 */

export interface Projection {
  /** Entries per second the fitted line grows by (negative: shrinking). */
  slopePerSec: number;
  /** Seconds from the last window until the line reaches max; null when not growing or too few points. */
  secondsToFull: number | null;
  /** true when the last window is already at or above max. */
  full: boolean;
  points: number;
}

/** `tMs`: window end times (ms); `count`: fullest namespace's entries at each. */
export function projectTimeToFull(tMs: number[], count: number[], max: number): Projection {
  const n = Math.min(tMs.length, count.length);
  const last = count[n - 1] ?? 0;
  const full = n > 0 && max > 0 && last >= max;
  if (n < 2 || max <= 0) return { slopePerSec: 0, secondsToFull: full ? 0 : null, full, points: n };
  const t0 = tMs[0]!;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += (tMs[i]! - t0) / 1000;
    sy += count[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = (tMs[i]! - t0) / 1000 - mx;
    sxy += dx * (count[i]! - my);
    sxx += dx * dx;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  if (full) return { slopePerSec: slope, secondsToFull: 0, full, points: n };
  // From where the fitted line stands at the last window, not the last raw
  // point: one noisy window should not move the estimate much.
  const lastX = (tMs[n - 1]! - t0) / 1000;
  const fitted = my + slope * (lastX - mx);
  const secondsToFull = slope > 0 ? Math.max(0, (max - fitted) / slope) : null;
  return { slopePerSec: slope, secondsToFull, full, points: n };
}
