/** The seconds-left histogram's slots (src/model/remaining.ts, mirrored in C and BPF). */
import { describe, expect, it } from 'vitest';
import { countAtMost, REMAIN_SLOTS, remainSlot, slotRange } from '../../src/model/remaining.js';

describe('remaining-timeout slots', () => {
  it('every second lands in a slot whose range holds it; slots tile 0..2^20 without gaps, at most 25% wide', () => {
    let expectLo = 0;
    for (let k = 0; k < REMAIN_SLOTS - 1; k++) {
      const [lo, hi] = slotRange(k);
      expect(lo, `slot ${k}`).toBe(expectLo);
      expect(hi).toBeGreaterThanOrEqual(lo);
      expect(hi - lo + 1).toBeLessThanOrEqual(Math.max(1, lo / 4));
      expect(remainSlot(lo)).toBe(k);
      expect(remainSlot(hi)).toBe(k);
      expectLo = hi + 1;
    }
    expect(expectLo).toBe(2 ** 20);
    expect(slotRange(REMAIN_SLOTS - 1)).toEqual([2 ** 20, Infinity]);
    expect(remainSlot(2 ** 20)).toBe(REMAIN_SLOTS - 1);
    expect(remainSlot(10 ** 9)).toBe(REMAIN_SLOTS - 1);
    // worked values: 5 days (established's default) and 120 s (time_wait's)
    expect(slotRange(remainSlot(432_000))).toEqual([393_216, 458_751]);
    expect(slotRange(remainSlot(120))).toEqual([112, 127]);
  });
  it('countAtMost: whole slots at or below the cut for sure, the straddling slot only possibly', () => {
    const slots = new Array<number>(REMAIN_SLOTS).fill(0);
    for (const r of [0, 3, 50, 70, 100, 431_000]) slots[remainSlot(r)]! += 1;
    // cut 90 s: 0, 3, 50 and 70 surely (70 is in 64..79); 100 is in 96..111: above
    expect(countAtMost(slots, 90)).toEqual({ atLeast: 4, atMost: 4 });
    // cut 98 s: 100 shares 96..111 with the cut: possibly
    expect(countAtMost(slots, 98)).toEqual({ atLeast: 4, atMost: 5 });
    expect(countAtMost(slots, 0)).toEqual({ atLeast: 1, atMost: 1 });
  });
});
