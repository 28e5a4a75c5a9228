/** Numeric helpers the model and the planners share. Pure. */

/** n / d; 0 when d is 0 (an empty table has no fill, a window without inserts no share). */
export function ratio(n: number, d: number): number {
  return d > 0 ? n / d : 0;
}

/** n rounded to `digits` decimals (2: rates; 4: ratios). */
export function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
