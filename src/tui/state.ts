/**
 * What the operator has chosen: view, sort, filter, pause, selection, the
 * open overlay. Keys become actions (keys.ts) and actions go through
 * `reduce`, a pure function, so every key's effect is unit-testable without
 * a terminal.
 */
import type { Action } from './keys.js';
import { EMPTY_FILTER, parseFilter, type Filter } from './filter.js';
import { VIEWS, sortKeysFor, type SortKey, type ViewId } from './talkers.js';

export type Overlay = 'none' | 'help' | 'details' | 'notrack';

export interface UiState {
  viewIndex: number;
  sort: Record<ViewId, SortKey>;
  filter: Filter;
  /** The filter being typed after `/`; null when not typing. */
  input: string | null;
  /** Why the last typed filter was refused. */
  inputError: string | null;
  paused: boolean;
  /** Index of the selected row in the current view's ranked list. */
  selected: number;
  overlay: Overlay;
  /** The NOTRACK overlay: the selected candidate and whether its dry run is shown. */
  notrack: { selected: number; stage: 'rules' | 'dryRun' };
  /** A NOTRACK action for the controller to carry out (the reducer does no I/O). */
  notrackRequest: 'dryRun' | 'apply' | 'confirm' | 'revert' | null;
  quit: boolean;
}

export function initialState(): UiState {
  return {
    viewIndex: 0,
    sort: { ports: 'inserts', tuples: 'inserts', sources: 'inserts', namespaces: 'inserts', pods: 'inserts', ranges: 'inserts', roles: 'inserts' },
    filter: EMPTY_FILTER,
    input: null,
    inputError: null,
    paused: false,
    selected: 0,
    overlay: 'none',
    notrack: { selected: 0, stage: 'rules' },
    notrackRequest: null,
    quit: false,
  };
}

export function currentView(s: UiState): ViewId {
  return VIEWS[s.viewIndex]!.id;
}

/** What `reduce` needs to know about the screen. */
export interface ReduceContext {
  /** Rows the current view has after filtering. */
  rowCount: number;
  /** Rows visible at once in the table. */
  pageRows: number;
}

function clampSel(sel: number, rowCount: number): number {
  return Math.max(0, Math.min(sel, rowCount - 1));
}

export function reduce(s: UiState, a: Action, ctx: ReduceContext): UiState {
  const page = Math.max(1, ctx.pageRows);
  switch (a) {
    case 'quit':
      return { ...s, quit: true };
    case 'help':
      return { ...s, overlay: s.overlay === 'help' ? 'none' : 'help' };
    case 'notrack':
      return { ...s, overlay: s.overlay === 'notrack' ? 'none' : 'notrack', notrack: { ...s.notrack, stage: 'rules' } };
    case 'notrackApply':
      // First the dry run, then (a again, in the same view) the guarded apply.
      if (s.overlay !== 'notrack') return { ...s, overlay: 'notrack', notrack: { ...s.notrack, stage: 'rules' } };
      return s.notrack.stage === 'dryRun'
        ? { ...s, notrack: { ...s.notrack, stage: 'rules' }, notrackRequest: 'apply' }
        : { ...s, notrack: { ...s.notrack, stage: 'dryRun' }, notrackRequest: 'dryRun' };
    case 'notrackConfirm':
      return { ...s, notrackRequest: 'confirm' };
    case 'notrackRevert':
      return { ...s, notrackRequest: 'revert' };
    case 'details':
      return { ...s, overlay: s.overlay === 'details' ? 'none' : ctx.rowCount > 0 ? 'details' : 'none' };
    case 'close':
      if (s.overlay !== 'none') return { ...s, overlay: 'none' };
      return { ...s, filter: EMPTY_FILTER, selected: 0 };
    case 'pause':
      return { ...s, paused: !s.paused };
    case 'filter':
      return { ...s, overlay: 'none', input: s.filter.text, inputError: null };
    case 'nextView':
    case 'prevView': {
      const n = VIEWS.length;
      const viewIndex = (s.viewIndex + (a === 'nextView' ? 1 : n - 1)) % n;
      return { ...s, viewIndex, selected: 0, overlay: 'none' };
    }
    case 'sort': {
      const view = currentView(s);
      const keys = sortKeysFor(view);
      const next = keys[(keys.indexOf(s.sort[view]) + 1) % keys.length]!;
      return { ...s, sort: { ...s.sort, [view]: next }, selected: 0 };
    }
  }
  // Movement: the details overlay follows the selection.
  const moves: Record<string, number> = { up: -1, down: 1, pageUp: -page, pageDown: page, first: -Infinity, last: Infinity };
  const d = moves[a] ?? 0;
  if (s.overlay === 'notrack') {
    // In the NOTRACK view the arrows pick a candidate (the controller clamps it to the list).
    const sel = d === -Infinity ? 0 : d === Infinity ? Number.MAX_SAFE_INTEGER : Math.max(0, s.notrack.selected + d);
    return { ...s, notrack: { selected: sel, stage: 'rules' } };
  }
  const target = d === -Infinity ? 0 : d === Infinity ? ctx.rowCount - 1 : s.selected + d;
  return { ...s, selected: clampSel(target, ctx.rowCount) };
}

/**
 * A key while the filter is being typed: printable characters edit it,
 * Enter applies it (or says why not), Escape abandons it.
 */
export function reduceInput(s: UiState, ch: string | undefined, keyName: string): UiState {
  if (s.input === null) return s;
  if (keyName === 'escape') return { ...s, input: null, inputError: null };
  if (keyName === 'enter') {
    try {
      return { ...s, filter: parseFilter(s.input), input: null, inputError: null, selected: 0 };
    } catch (e) {
      return { ...s, inputError: (e as Error).message };
    }
  }
  if (keyName === 'backspace') return { ...s, input: s.input.slice(0, -1), inputError: null };
  if (keyName === 'C-u') return { ...s, input: '', inputError: null };
  if (ch !== undefined && ch.length === 1 && ch >= ' ' && ch !== '\x7f' && s.input.length < 200) {
    return { ...s, input: s.input + ch, inputError: null };
  }
  return s;
}
