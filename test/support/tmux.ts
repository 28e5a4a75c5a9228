/**
 * A tmux server of a test file's own, for driving the live screen as a person
 * does: start the real program in a pane, send keys, read the screen back.
 * Every wait polls for the expected text with a deadline, and only a screen
 * that holds still for one more poll counts (a capture can land in the middle
 * of a redraw).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { CLI } from './cli.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface StartOptions {
  /** columns x rows of the pane (80x24) */
  size?: [number, number];
  /** extra environment for ctop (NO_COLOR and CTOP_TEST_FAULT are unset unless given here) */
  env?: Record<string, string>;
  /** the pane's shell prints "shell before ctop" first, so a test can see the main screen come back */
  banner?: boolean;
}

export class Tmux {
  private readonly server = `ctop-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private session = '';
  private sessions = 0;

  constructor() {
    if (spawnSync('tmux', ['-V']).status !== 0) throw new Error('tmux is not installed (scripts/setup.sh installs it)');
    // an idle session keeps the server up between panes: a server whose last session closes
    // exits, and a new session started meanwhile would race with it
    this.tmux('new-session', '-d', '-s', 'keeper', '-x', '80', '-y', '24', 'exec sleep 900');
  }

  tmux(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.server, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Runs ctop with `args` in a new pane; the shell prints ctop's exit status after ("ctop-exit=N"). */
  start(args: string[], o: StartOptions | [number, number] = {}): void {
    const opts: StartOptions = Array.isArray(o) ? { size: o } : o;
    const [cols, rows] = opts.size ?? [80, 24];
    this.session = `s${++this.sessions}`;
    const vars = Object.entries({ LANG: 'C.UTF-8', TERM: 'xterm-256color', ...opts.env })
      .map(([k, v]) => `${k}=${q(v)}`)
      .join(' ');
    const banner = opts.banner ? `printf 'shell before ctop\\n'; ` : '';
    const cmd = `${banner}env -u NO_COLOR -u CTOP_TEST_FAULT ${vars} ${q(process.execPath)} ${q(CLI)} ${args.map(q).join(' ')}; echo "ctop-exit=$?"; exec sleep 900`;
    this.tmux('new-session', '-d', '-s', this.session, '-x', String(cols), '-y', String(rows), cmd);
  }

  /**
   * The pane's text; with `escapes`, its colours and attributes as escape
   * sequences; `joined`: the lines the terminal wrapped joined back, trailing
   * spaces kept (for printed text: a wrap that falls on a space otherwise
   * loses it).
   */
  screen(escapes = false, joined = false): string {
    return this.tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), ...(joined ? ['-J'] : []), '-t', this.session);
  }

  keys(...k: string[]): void {
    this.tmux('send-keys', '-t', this.session, ...k);
  }

  /** The screen once it shows what `want` wants and holds still for one more poll. */
  async waitFor(want: RegExp | ((s: string) => boolean), what = String(want), timeoutMs = 15_000, opts: { joined?: boolean } = {}): Promise<string> {
    const test = typeof want === 'function' ? want : (s: string): boolean => want.test(s);
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      last = this.screen(false, opts.joined);
      if (test(last)) {
        await new Promise((r) => setTimeout(r, 40));
        if (this.screen(false, opts.joined) === last) return last;
        continue;
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; screen:\n${last}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  /** Sends keys and waits for the screen to show `after`. */
  async press(after: RegExp | ((s: string) => boolean), ...k: string[]): Promise<string> {
    this.keys(...k);
    return this.waitFor(after);
  }

  /** A tmux format of the pane (#{alternate_on}, #{cursor_flag}, …). */
  paneInfo(format: string): string {
    return this.tmux('display-message', '-p', '-t', this.session, format).trim();
  }

  /** ctop's own pid: the pane runs sh, whose one child is node. */
  ctopPid(): number {
    const shell = this.paneInfo('#{pane_pid}');
    const r = spawnSync('ps', ['-o', 'pid=', '--ppid', shell], { encoding: 'utf8' });
    const pid = Number(r.stdout.trim().split('\n')[0]);
    if (!(pid > 0)) throw new Error(`no ctop process under pane shell ${shell}`);
    return pid;
  }

  resize(cols: number, rows: number): void {
    this.tmux('resize-window', '-t', this.session, '-x', String(cols), '-y', String(rows));
  }

  killSession(): void {
    if (this.session) spawnSync('tmux', ['-L', this.server, 'kill-session', '-t', this.session], { timeout: 10_000 });
    this.session = '';
  }

  destroy(): void {
    const socket = spawnSync('tmux', ['-L', this.server, 'display-message', '-p', '#{socket_path}'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    spawnSync('tmux', ['-L', this.server, 'kill-server'], { timeout: 10_000 });
    // kill-server leaves the socket file behind
    if (socket.includes(this.server)) rmSync(socket, { force: true });
  }
}
