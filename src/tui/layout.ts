/**
 * Where each panel goes for a terminal of cols x rows. At 80x24 every panel
 * fits; taller terminals give the rows to the top-talkers table; smaller ones
 * drop the lower panels first, then say the terminal is too small. Pure.
 */

export interface Rect {
  top: number;
  left: number;
  width: number;
  height: number;
}

export interface Layout {
  /** Set when nothing useful fits: the screen shows only a message. */
  tooSmall: boolean;
  header: Rect;
  gauge: Rect;
  rates: Rect;
  buckets: Rect | null;
  talkers: Rect;
  drops: Rect | null;
  notrack: Rect | null;
  footer: Rect;
}

const MIN_COLS = 40;
const MIN_ROWS = 12;

export function layout(cols: number, rows: number): Layout {
  const full = (top: number, height: number): Rect => ({ top, left: 0, width: cols, height });
  const tooSmall = cols < MIN_COLS || rows < MIN_ROWS;
  const half = Math.floor(cols / 2);
  const split = (top: number, height: number): [Rect, Rect] => [
    { top, left: 0, width: half, height },
    { top, left: half, width: cols - half, height },
  ];
  // Rates and buckets: a bordered box with four lines inside; more rows
  // for the bucket histogram on tall terminals.
  const upperH = rows >= 50 ? 13 : 6;
  // Drops and NOTRACK: four inside lines, six on tall terminals.
  const lowerH = rows >= 20 ? (rows >= 40 ? 8 : 6) : 0;
  const [rates, buckets] = split(2, upperH);
  const talkersTop = 2 + upperH;
  const talkersH = Math.max(3, rows - talkersTop - lowerH - 1);
  const [drops, notrack] = split(talkersTop + talkersH, lowerH);
  const narrow = cols < 60;
  return {
    tooSmall,
    header: full(0, 1),
    gauge: full(1, 1),
    rates: narrow ? full(2, upperH) : rates,
    buckets: narrow ? null : buckets,
    talkers: full(talkersTop, talkersH),
    drops: lowerH > 0 ? (narrow ? full(talkersTop + talkersH, lowerH) : drops) : null,
    notrack: lowerH > 0 && !narrow ? notrack : null,
    footer: full(rows - 1, 1),
  };
}
