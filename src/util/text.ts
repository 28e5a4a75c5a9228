/** Small text helpers shared by every view and message. */

/** Messages are one line: control characters are escaped, long text is cut. */
export function oneLine(text: string, maxLen = 300): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return flat.length > maxLen ? `${flat.slice(0, maxLen)}…` : flat;
}

/** A ratio as a percentage ("12.5%"); "—" when there is none. */
export function percent(ratio: number | null, digits = 1): string {
  return ratio === null ? '—' : `${(ratio * 100).toFixed(digits)}%`;
}

/** Bytes in MiB with one decimal ("3.5 MiB"). */
export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
