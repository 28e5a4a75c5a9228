/** Small text helpers shared by every view and message. */
import { cleanText } from './sanitize.js';

/** Messages are one line: control characters are escaped (the one cleaner, src/util/sanitize.ts), long text is cut. */
export function oneLine(text: string, maxLen = 300): string {
  return cleanText(text, maxLen);
}

/** A ratio as a percentage ("12.5%"); "—" when there is none. */
export function percent(ratio: number | null, digits = 1): string {
  return ratio === null ? '—' : `${(ratio * 100).toFixed(digits)}%`;
}

/** Bytes in MiB with one decimal ("3.5 MiB"). */
export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
