/**
 * The one key table: a key press does what its row here says (actionFor) and
 * the help screen lists exactly these rows, so the two cannot disagree. Pure
 * data.
 */

export type Action =
  | 'quit'
  | 'help'
  | 'sort'
  | 'filter'
  | 'pause'
  | 'nextView'
  | 'prevView'
  | 'up'
  | 'down'
  | 'pageUp'
  | 'pageDown'
  | 'first'
  | 'last'
  | 'details'
  | 'notrack'
  | 'notrackApply'
  | 'notrackConfirm'
  | 'notrackRevert'
  | 'close';

export interface KeyBinding {
  /** blessed key names (`key.full`): 'q', 'C-c', 'tab', 'S-tab', 'enter', … */
  keys: string[];
  /** How the help screen writes the keys. */
  shown: string;
  action: Action;
  help: string;
  /** Listed in the one-line hint at the bottom of the screen. */
  hint?: string;
}

export const KEY_TABLE: readonly KeyBinding[] = [
  { keys: ['q', 'C-c'], shown: 'q, Ctrl-C', action: 'quit', help: 'quit (the terminal is restored)', hint: 'quit' },
  { keys: ['?'], shown: '?', action: 'help', help: 'show or hide this help', hint: 'help' },
  { keys: ['tab'], shown: 'Tab', action: 'nextView', help: 'next view: ports … namespaces, pods, ranges, roles', hint: 'view' },
  { keys: ['S-tab'], shown: 'Shift-Tab', action: 'prevView', help: 'previous view' },
  { keys: ['s'], shown: 's', action: 'sort', help: 'next sort: inserts/s, over 10s, 60s, drops/s, occupancy, name', hint: 'sort' },
  { keys: ['/'], shown: '/', action: 'filter', help: 'filter: 53, udp, 198.18.0.1, ns:web (all must match)', hint: 'filter' },
  { keys: ['p'], shown: 'p', action: 'pause', help: 'pause or resume sampling (the screen holds still)', hint: 'pause' },
  { keys: ['up', 'k'], shown: '↑, k', action: 'up', help: 'move up' },
  { keys: ['down', 'j'], shown: '↓, j', action: 'down', help: 'move down' },
  { keys: ['pageup'], shown: 'PgUp', action: 'pageUp', help: 'one page up' },
  { keys: ['pagedown'], shown: 'PgDn', action: 'pageDown', help: 'one page down' },
  { keys: ['home', 'g'], shown: 'Home, g', action: 'first', help: 'first row' },
  { keys: ['end', 'S-g'], shown: 'End, G', action: 'last', help: 'last row' },
  { keys: ['enter'], shown: 'Enter', action: 'details', help: 'details of the selected row', hint: 'details' },
  { keys: ['n'], shown: 'n', action: 'notrack', help: 'NOTRACK candidates as `ctop advise` ranks them (↑↓ pick one)', hint: 'notrack' },
  { keys: ['a'], shown: 'a', action: 'notrackApply', help: 'NOTRACK view: dry run of the pick; a again applies it' },
  { keys: ['c'], shown: 'c', action: 'notrackConfirm', help: 'keep a NOTRACK change made here before it rolls back' },
  { keys: ['r'], shown: 'r', action: 'notrackRevert', help: "revert ctop's NOTRACK table to before the change" },
  { keys: ['escape'], shown: 'Esc', action: 'close', help: 'close help, details or rules; clear the filter' },
];

const BY_KEY = new Map<string, Action>();
for (const b of KEY_TABLE) for (const k of b.keys) BY_KEY.set(k, b.action);

/** The action bound to a blessed key name, if any. */
export function actionFor(keyFull: string): Action | undefined {
  return BY_KEY.get(keyFull);
}

/** The help screen's rows: "  keys    what it does". */
export function helpLines(): string[] {
  const w = Math.max(...KEY_TABLE.map((b) => b.shown.length));
  return KEY_TABLE.map((b) => `  ${b.shown.padEnd(w)}  ${b.help}`);
}

/** The bottom line: "q quit  ? help  Tab view  …". */
export function hintLine(): string {
  const first = (b: KeyBinding): string => (b.action === 'up' ? '↑↓' : (b.shown.split(',')[0] ?? b.shown));
  return KEY_TABLE.filter((b) => b.hint).map((b) => `${first(b)} ${b.hint}`).join('  ');
}
