/**
 * The census's histogram of seconds left on TCP entries (bpf/walk.h
 * CTOP_REMAIN_SLOTS, native/core/ctop_core.h ctop_remain_slot): 4 slots per
 * power of two. r < 4: slot r; else with e = floor(log2 r): slot
 * 4(e-1) + ((r >> (e-2)) & 3) up to e = 19; the last slot is 2^20 s or more.
 * Pure.
 */
export const REMAIN_SLOTS = 77;
const LAST = REMAIN_SLOTS - 1;

/** Seconds covered by slot k: [lo, hi], hi Infinity for the last. */
export function slotRange(k: number): [number, number] {
  if (k < 4) return [k, k];
  if (k >= LAST) return [2 ** 20, Infinity];
  const e = Math.floor(k / 4) + 1;
  const sub = k % 4;
  return [(4 + sub) * 2 ** (e - 2), (5 + sub) * 2 ** (e - 2) - 1];
}

/** The slot r seconds falls in (what the native census does). */
export function remainSlot(r: number): number {
  const x = Math.max(0, Math.floor(r));
  if (x < 4) return x;
  const e = Math.floor(Math.log2(x));
  if (e > 19) return LAST;
  return 4 * (e - 1) + (Math.floor(x / 2 ** (e - 2)) % 4);
}
/** Entries with at most `maxS` seconds left: certainly (whole slots) and possibly (slots that reach down to it). */
export function countAtMost(slots: number[], maxS: number): { atLeast: number; atMost: number } {
  let atLeast = 0;
  let atMost = 0;
  slots.forEach((n, k) => {
    const [lo, hi] = slotRange(k);
    if (hi <= maxS) atLeast += n;
    if (lo <= maxS) atMost += n;
  });
  return { atLeast, atMost };
}
