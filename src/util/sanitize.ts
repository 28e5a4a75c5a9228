/**
 * Text other users control, made safe for where root sees or runs it.
 *
 * ctop runs as root on shared hosts and shows text it did not write: a
 * process's comm (which names its namespace), table and chain names from a
 * tenant's ruleset, fields of a recording someone handed over. Any of these
 * can carry terminal escapes (ESC, the 8-bit CSI 0x9b), line breaks that
 * forge output lines, or bidirectional overrides that reorder what is shown.
 *
 *   cleanText:  the one cleaner for every terminal (CLI tables, diff, TUI,
 *               overlays, messages): such characters become visible escapes.
 *   shellQuote: a word for a command line ctop suggests, one argument in sh.
 *   csvCell:    a CSV cell a spreadsheet shows as text, never evaluates.
 */

/**
 * C0 controls, DEL, C1 controls (0x80-0x9f: 0x9b is CSI on 8-bit terminals),
 * line/paragraph separators, and the bidirectional marks and overrides.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * One line of plain text: every unsafe character replaced by a visible
 * escape (ESC shows as \x1b), cut to `maxLen` characters with "…".
 */
export function cleanText(text: string, maxLen = 300): string {
  const flat = String(text).replace(UNSAFE, escapeChar);
  return flat.length > maxLen ? `${flat.slice(0, maxLen)}…` : flat;
}

/** Whether `text` would be changed by cleanText (not counting the cut). */
function hasUnsafeText(text: string): boolean {
  UNSAFE.lastIndex = 0;
  const r = UNSAFE.test(text);
  UNSAFE.lastIndex = 0;
  return r;
}

/** Words that need no quoting in sh. */
const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * `text` as one sh word: unchanged when plain, else in single quotes (a
 * quote inside becomes '\''); text with control characters is written as
 * bash's $'…' with \xNN escapes, so the command line shown stays one line
 * and carries no escape to the terminal.
 */
export function shellQuote(text: string): string {
  if (text !== '' && PLAIN.test(text)) return text;
  if (!hasUnsafeText(text)) return `'${text.replace(/'/g, `'\\''`)}'`;
  let out = "$'";
  for (const c of text) {
    if (c === "'" || c === '\\') out += `\\${c}`;
    else if (hasUnsafeText(c)) out += c.charCodeAt(0) <= 0xff ? escapeChar(c) : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return `${out}'`;
}

/**
 * One CSV cell (RFC 4180). A text cell a spreadsheet would read as a formula
 * (leading = + - @, or a tab or CR before one) is prefixed with ' so it is
 * shown as text; quoting alone does not stop evaluation. Numbers stay numbers.
 */
export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A multi-line view (a report, a table) with every line cleaned; the line breaks stay. */
export function cleanLines(text: string): string {
  return text
    .split('\n')
    .map((l) => cleanText(l, Infinity))
    .join('\n');
}

/**
 * Whether a table or chain name can go into a suggested nft or iptables
 * command as it is: nft's own unquoted identifier (a letter, _ or ., then
 * letters, digits, / - _ .). Anything else (`;`, spaces, quotes, controls) could
 * end the command for nft or the shell, so no command is written for it.
 */
export function isPlainRuleName(name: string): boolean {
  return /^[A-Za-z_.][A-Za-z0-9_./-]{0,255}$/.test(name);
}

/**
 * A JSON document for stdout, which is often a terminal: JSON.stringify
 * escapes C0 controls but leaves C1 controls (0x9b is CSI), DEL, line
 * separators and bidirectional overrides raw; here they are \u escapes too.
 * The document means exactly the same.
 */
export function jsonForTerminal(value: unknown, indent = 2): string {
  // eslint-disable-next-line no-control-regex
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
