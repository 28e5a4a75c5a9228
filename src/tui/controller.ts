/**
 * The refresh clock's work and the keys' effects, without a terminal: one
 * tick reads the source once and updates the model once; frame() turns model
 * and state into the text of every panel for a given terminal size. The
 * screen module (blessed) only places that text, so this is what the
 * benchmark measures and what tests can drive.
 */
import { CtopError } from '../errors.js';
import { actionFor } from './keys.js';
import { layout, type Layout } from './layout.js';
import { emptyModel, updateModel, type TuiModel } from './model.js';
import {
  bucketLines,
  detailsLines,
  dropsLines,
  errorLines,
  footerLine,
  gaugeLine,
  headerLine,
  helpScreenLines,
  ratesLines,
  rowsNeeded,
  talkersLines,
  talkersTitle,
  type SourceInfo,
} from './panels.js';
import { currentView, initialState, reduce, reduceInput, type UiState } from './state.js';
import { selectRows, type Selection } from './talkers.js';
import type { Paint } from './text.js';
import type { WindowSource } from '../model/snapshot.js';
import { liveNotrack, notrackLines, notrackOverlayLines, notrackStatusText, type LiveNotrack, type NotrackActions, type NotrackStatus } from './notrackPanel.js';

/** A failed source is tried again this often, whatever the interval. */
const RETRY_MS = 1000;

export interface Panel {
  label?: string;
  lines: string[];
}

export interface Frame {
  layout: Layout;
  header: string;
  gauge: string;
  rates: Panel;
  buckets: Panel | null;
  talkers: Panel;
  drops: Panel | null;
  notrack: Panel | null;
  footer: string;
  /** Help, details or rules, over the panels. */
  overlay: Panel | null;
  /** A message that replaces everything: a failed source, a terminal too small. */
  fullScreen: string[] | null;
}

export class Controller {
  model: TuiModel = emptyModel();
  state: UiState = initialState();
  error: { message: string; hint?: string } | null = null;
  attempts = 0;
  private selection: { key: unknown[]; value: Selection } | undefined;
  private visibleRows = 10;
  /** The NOTRACK planner's answer for the current window (computed once per window). */
  private live: { s: unknown; value: LiveNotrack | null } | undefined;
  /** The last dry run: null when `nft -c` passed, else why not. */
  private dryRun: string | null = null;
  /** An action from the screen that failed (the guard's message). */
  private notrackError: string | null = null;

  constructor(
    private readonly source: WindowSource,
    private readonly intervalMs: number,
    private readonly paint: Paint,
    /** The NOTRACK actions' I/O (absent for a replay: the overlay only shows rules). */
    private readonly notrack?: NotrackActions,
  ) {}

  /** advise's NOTRACK candidates for the current window (the panel, the overlay and the actions use these). */
  liveNotrack(): LiveNotrack | null {
    const s = this.model.current;
    if (!this.live || this.live.s !== s) this.live = { s, value: liveNotrack(s, this.notrack) };
    return this.live.value;
  }

  /** The guarded change's state as the screen shows it. */
  notrackStatus(): NotrackStatus | null {
    if (this.notrackError) return { kind: 'error', message: this.notrackError };
    return this.notrack?.status() ?? null;
  }

  /** Carries out what the reducer asked for: the dry run at once, the changes in the background (the next refresh shows them). */
  private runNotrackRequest(): void {
    const req = this.state.notrackRequest;
    if (!req) return;
    this.state = { ...this.state, notrackRequest: null };
    const fail = (e: unknown): void => {
      this.notrackError = e instanceof Error ? e.message : String(e);
    };
    if (!this.notrack) {
      this.notrackError = 'the live kernel is needed to change rules (this is a replay)';
      return;
    }
    this.notrackError = null;
    const live = this.liveNotrack();
    const c = live?.advice.candidates[Math.min(this.state.notrack.selected, live.advice.candidates.length - 1)];
    if (req === 'dryRun' || req === 'apply') {
      if (!live || !c) {
        this.notrackError = 'no candidate in this window';
        return;
      }
      if (req === 'dryRun') this.dryRun = this.notrack.check(live.inode, c.rules.nft);
      else this.notrack.apply(live.inode, c).catch(fail);
    } else if (req === 'confirm') this.notrack.confirm().catch(fail);
    else this.notrack.revert().catch(fail);
  }

  /** One refresh: read the source once (unless paused). Returns the delay until the next one. */
  tick(): number {
    if (this.state.paused) return this.intervalMs;
    try {
      const w = this.source.next();
      if (w) this.model = updateModel(this.model, w);
      this.error = null;
      this.attempts = 0;
      return this.intervalMs;
    } catch (e) {
      this.attempts++;
      this.error =
        e instanceof CtopError
          ? { message: e.message, hint: e.hint }
          : { message: e instanceof Error ? e.message : String(e) };
      return RETRY_MS;
    }
  }

  /** A key press; returns whether the screen needs drawing again. */
  key(ch: string | undefined, keyFull: string): boolean {
    const before = this.state;
    if (this.state.input !== null) {
      // Ctrl-C still quits while typing a filter.
      this.state = keyFull === 'C-c' ? { ...this.state, quit: true } : reduceInput(this.state, ch, keyFull);
    } else {
      const action = actionFor(keyFull);
      if (!action) return false;
      const sel = this.currentSelection();
      this.state = reduce(this.state, action, { rowCount: sel?.total ?? 0, pageRows: this.visibleRows });
      this.runNotrackRequest();
    }
    return this.state !== before;
  }

  get quit(): boolean {
    return this.state.quit;
  }

  /** The current view's rows, cached until the window, view, sort, filter or page changes. */
  currentSelection(): Selection | undefined {
    const s = this.model.current;
    if (!s) return undefined;
    const view = currentView(this.state);
    const limit = rowsNeeded(this.state.selected, this.visibleRows);
    const key = [s, view, this.state.sort[view], this.state.filter, limit];
    if (this.selection && this.selection.key.every((k, i) => k === key[i])) return this.selection.value;
    const value = selectRows(s, view, this.state.sort[view], this.state.filter, limit, this.model.rolling);
    this.selection = { key, value };
    return value;
  }

  frame(cols: number, rows: number, info: Omit<SourceInfo, 'intervalMs'>): Frame {
    const l = layout(cols, rows);
    const inner = (r: { width: number; height: number }): { w: number; h: number } => ({ w: Math.max(0, r.width - 2), h: Math.max(0, r.height - 2) });
    const s = this.model.current;
    const p = this.paint;
    const st = this.state;
    const t = inner(l.talkers);
    this.visibleRows = Math.max(1, t.h - 1);
    const sel = this.currentSelection();
    const fullScreen = l.tooSmall
      ? [`The terminal is ${cols}x${rows}: ctop needs at least 40x12 (80x24 shows every panel).`, '', 'q quits.']
      : this.error
        ? errorLines(this.error, this.attempts, cols)
        : null;
    let overlay: Panel | null = null;
    if (st.overlay === 'help') overlay = { label: ' Help ', lines: helpScreenLines() };
    const live = this.liveNotrack();
    const status = this.notrackStatus();
    if (st.overlay === 'notrack') {
      overlay = { label: ' NOTRACK ', lines: notrackOverlayLines(live, st.notrack.selected, st.notrack.stage, this.dryRun, status, this.notrack !== undefined) };
    }
    else if (st.overlay === 'details') overlay = { label: ' Details ', lines: detailsLines(sel?.rows[st.selected]) };
    const r = inner(l.rates);
    return {
      layout: l,
      header: headerLine(this.model, st, { ...info, intervalMs: this.intervalMs, ...(status ? { notrack: notrackStatusText(status) } : {}) }, cols),
      gauge: gaugeLine(this.model, cols, p),
      rates: { label: ' Rates per second ', lines: ratesLines(this.model, r.w, r.h, p) },
      buckets: l.buckets ? { label: ' Hash buckets ', lines: bucketLines(s, inner(l.buckets).w, inner(l.buckets).h) } : null,
      talkers: { label: talkersTitle(st, sel, s, this.source.occupancyError?.(), t.w - 2), lines: talkersLines(sel, st, t.w, t.h, p) },
      drops: l.drops ? { label: ' Refused by conntrack ', lines: dropsLines(s, inner(l.drops).w, inner(l.drops).h, p) } : null,
      notrack: l.notrack ? { label: ' NOTRACK candidates ', lines: notrackLines(live, s, inner(l.notrack).w, inner(l.notrack).h) } : null,
      footer: footerLine(st, cols, p),
      overlay,
      fullScreen,
    };
  }
}
