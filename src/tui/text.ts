/**
 * Text helpers for the screen: fitting plain text to a width, number
 * formats, and blessed's style tags, which NO_COLOR reduces to the
 * attributes that are not colours (bold, inverse). Pure: no I/O.
 */

import { cleanText } from '../util/sanitize.js';

export interface Paint {
  color: boolean;
}

/** Text from the data (host names, namespace names) made safe: no control characters, no tags. */
export function clean(text: string): string {
  return cleanText(text, Infinity);
}

/** blessed reads `{…}` as tags: escape braces in text that is not a tag. */
export function esc(text: string): string {
  return text.replace(/[{}]/g, (c) => (c === '{' ? '{open}' : '{close}'));
}

/** Cut to `width` columns (with … when cut) and pad to exactly `width`. */
export function fit(raw: string, width: number): string {
  if (width <= 0) return '';
  const text = clean(raw);
  if (text.length > width) return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
  return text.padEnd(width);
}

export function fitRight(text: string, width: number): string {
  return text.length > width ? fit(text, width) : text.padStart(width);
}

/** Wraps already-escaped text in a colour tag, or not at all under NO_COLOR. */
export function fg(p: Paint, colour: 'red' | 'yellow' | 'green' | 'cyan' | 'gray', text: string): string {
  return p.color && text.length > 0 ? `{${colour}-fg}${text}{/${colour}-fg}` : text;
}

export function bold(text: string): string {
  return text.length > 0 ? `{bold}${text}{/bold}` : text;
}

export function inverse(text: string): string {
  return `{inverse}${text}{/inverse}`;
}

const THOUSANDS = /\B(?=(\d{3})+(?!\d))/g;

export function count(n: number): string {
  return String(Math.round(n)).replace(THOUSANDS, ',');
}

/** A rate in a few columns: 0, 0.4, 12.5, 1,520, 45.2k, 1.20M. */
export function rate(n: number | null): string {
  if (n === null) return '—';
  if (n === 0) return '0';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e5) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 100) return count(n);
  return n.toFixed(1);
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/**
 * The last `width` values as block characters, scaled to the largest shown.
 * Zero is a blank, so a quiet series looks quiet; null (not counted) is '·'.
 */
export function sparkline(values: readonly (number | null)[], width: number): string {
  if (width <= 0) return '';
  const shown = values.slice(-width);
  let max = 0;
  for (const v of shown) if (v !== null && v > max) max = v;
  let out = '';
  for (const v of shown) {
    if (v === null) out += '·';
    else if (v <= 0 || max <= 0) out += ' ';
    else out += BLOCKS[Math.min(7, Math.max(0, Math.ceil((v / max) * 8) - 1))];
  }
  return out.padStart(width);
}

/** A horizontal bar `width` wide, `ratio` of it filled. */
export function bar(ratio: number, width: number): string {
  if (width <= 0) return '';
  const filled = Math.max(0, Math.min(width, Math.round(ratio * width)));
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}
