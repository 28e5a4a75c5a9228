/**
 * The only module that talks to the terminal (blessed): it places the text
 * of a Frame in boxes, forwards key presses and resizes, and gives the
 * terminal back on destroy(). No timers and no data logic live here.
 */
import blessed from 'blessed';
import type { Frame, Panel } from './controller.js';
import type { Rect } from './layout.js';

export interface ScreenOptions {
  color: boolean;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

type Box = blessed.Widgets.BoxElement;

export class TuiScreen {
  readonly screen: blessed.Widgets.Screen;
  private readonly plain: Record<'header' | 'gauge' | 'footer', Box>;
  private readonly panels: Record<'rates' | 'buckets' | 'talkers' | 'drops' | 'notrack', Box>;
  private readonly overlay: Box;
  private readonly full: Box;
  private destroyed = false;

  constructor(o: ScreenOptions) {
    this.screen = blessed.screen({
      smartCSR: true,
      title: 'ctop',
      warnings: false,
      autoPadding: false,
      // Block characters and arrows are single-width; full Unicode width
      // tables would cost time on every refresh for nothing.
      fullUnicode: false,
      // @types/blessed declares `input` as a Writable; blessed reads from it.
      ...((o.input ? { input: o.input } : {}) as object),
      ...(o.output ? { output: o.output } : {}),
    } as blessed.Widgets.IScreenOptions);
    const box = (border: boolean): Box =>
      blessed.box({
        parent: this.screen,
        tags: true,
        wrap: false,
        ...(border ? { border: { type: 'line' as const } } : {}),
        style: o.color && border ? { border: { fg: 'gray' }, label: { bold: true } } : {},
      });
    this.plain = { header: box(false), gauge: box(false), footer: box(false) };
    this.panels = { rates: box(true), buckets: box(true), talkers: box(true), drops: box(true), notrack: box(true) };
    this.overlay = box(true);
    this.full = box(false);
    // Draw lines and blocks as UTF-8, not through the VT100 alternate
    // character set: ACS garbles over some SSH clients, and a terminal that
    // says it is not UTF-8 (LANG) still gets blessed's ASCII stand-ins.
    (this.screen as unknown as { tput: { brokenACS: boolean } }).tput.brokenACS = true;
    this.screen.program.hideCursor();
  }

  get cols(): number {
    return this.screen.width as number;
  }

  get rows(): number {
    return this.screen.height as number;
  }

  onKey(handler: (ch: string | undefined, keyFull: string) => void): void {
    this.screen.on('keypress', (ch: string | undefined, key: { full?: string; name?: string } | undefined) => {
      // blessed reports Enter twice ('return', then 'enter'): only 'enter' counts.
      if (!key || key.name === 'return') return;
      handler(ch, key.full ?? key.name ?? '');
    });
  }

  onResize(handler: () => void): void {
    this.screen.on('resize', handler);
  }

  draw(f: Frame): void {
    if (this.destroyed) return;
    const place = (b: Box, r: Rect | null, content: string | Panel | null): void => {
      if (!r || content === null || f.fullScreen) {
        b.hide();
        return;
      }
      b.top = r.top;
      b.left = r.left;
      b.width = r.width;
      b.height = r.height;
      if (typeof content === 'string') b.setContent(content);
      else {
        // A label longer than its border wraps into the box in blessed: cut it.
        const label = content.label ?? '';
        b.setLabel(label.length > r.width - 4 ? `${label.slice(0, Math.max(0, r.width - 5))}…` : label);
        b.setContent(content.lines.join('\n'));
      }
      b.show();
    };
    const l = f.layout;
    place(this.plain.header, l.header, f.header);
    place(this.plain.gauge, l.gauge, f.gauge);
    place(this.panels.rates, l.rates, f.rates);
    place(this.panels.buckets, l.buckets, f.buckets);
    place(this.panels.talkers, l.talkers, f.talkers);
    place(this.panels.drops, l.drops, f.drops);
    place(this.panels.notrack, l.notrack, f.notrack);
    place(this.plain.footer, l.footer, f.footer);
    if (f.overlay && !f.fullScreen) {
      const width = Math.min(this.cols, Math.max(40, ...f.overlay.lines.map((x) => x.replace(/\{[^}]*\}/g, '').length + 4)));
      const height = Math.min(this.rows, f.overlay.lines.length + 2);
      place(this.overlay, { top: Math.max(0, Math.floor((this.rows - height) / 2)), left: Math.max(0, Math.floor((this.cols - width) / 2)), width, height }, f.overlay);
      this.overlay.setFront();
    } else this.overlay.hide();
    if (f.fullScreen) {
      this.full.top = 0;
      this.full.left = 0;
      this.full.width = this.cols;
      this.full.height = this.rows;
      this.full.setContent(f.fullScreen.map((x) => ` ${x}`).join('\n'));
      this.full.show();
      this.full.setFront();
    } else this.full.hide();
    this.screen.render();
  }

  /** Gives the terminal back: main screen, cursor, normal input mode. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.screen.destroy();
  }
}
