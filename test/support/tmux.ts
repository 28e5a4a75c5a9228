/**
 * A tmux server of a test file's own, for driving the live screen as a person
 * does: start the real program in a pane, send keys, read the screen back.
 * Every wait polls for the expected text with a deadline.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { CLI } from './cli.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export class Tmux {
  private readonly server = `ctop-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private session = '';
  private sessions = 0;

  constructor() {
    if (spawnSync('tmux', ['-V']).status !== 0) throw new Error('tmux is not installed (scripts/setup.sh installs it)');
    // an idle session keeps the server up between panes
    this.tmux('new-session', '-d', '-s', 'keeper', '-x', '80', '-y', '24', 'exec sleep 900');
  }

  tmux(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.server, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Runs ctop with `args` (and `env` on top of a UTF-8 xterm, without NO_COLOR
   * or CTOP_TEST_FAULT from outside) in a new pane of cols x rows. The shell
   * prints a line before ctop, so a test can see its screen come back, and
   * ctop's exit status after.
   */
  start(args: string[], size: [number, number] = [80, 24], env: Record<string, string> = {}): void {
    this.session = `s${++this.sessions}`;
    const vars = Object.entries({ LANG: 'C.UTF-8', TERM: 'xterm-256color', ...env })
      .map(([k, v]) => `${k}=${q(v)}`)
      .join(' ');
    const cmd = `printf 'shell before ctop\\n'; env -u NO_COLOR -u CTOP_TEST_FAULT ${vars} ${q(process.execPath)} ${q(CLI)} ${args.map(q).join(' ')}; echo "ctop-exit=$?"; exec sleep 900`;
    this.tmux('new-session', '-d', '-s', this.session, '-x', String(size[0]), '-y', String(size[1]), cmd);
  }

  /**
   * The pane's text. `escapes`: with its colour and attribute sequences.
   * `joined`: the lines the terminal wrapped joined back, trailing spaces kept
   * (for printed text: a wrap that falls on a space otherwise loses it).
   */
  screen(opts: { escapes?: boolean; joined?: boolean } = {}): string {
    return this.tmux('capture-pane', '-p', ...(opts.escapes ? ['-e'] : []), ...(opts.joined ? ['-J'] : []), '-t', this.session);
  }

  /** A tmux format of the pane: #{pane_pid}, #{alternate_on}, #{cursor_flag}, ... */
  paneInfo(format: string): string {
    return this.tmux('display-message', '-p', '-t', this.session, format).trim();
  }

  resize(cols: number, rows: number): void {
    this.tmux('resize-window', '-t', this.session, '-x', String(cols), '-y', String(rows));
  }

  keys(...k: string[]): void {
    this.tmux('send-keys', '-t', this.session, ...k);
  }

  /** The screen once it shows what `test` wants and holds still for one more poll. */
  async waitFor(test: (s: string) => boolean, what: string, timeoutMs = 15_000, opts: { joined?: boolean } = {}): Promise<string> {
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      last = this.screen(opts);
      if (test(last)) {
        await new Promise((r) => setTimeout(r, 40));
        if (this.screen(opts) === last) return last;
        continue;
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; screen:\n${last}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  killSession(): void {
    if (this.session) spawnSync('tmux', ['-L', this.server, 'kill-session', '-t', this.session], { timeout: 10_000 });
    this.session = '';
  }

  destroy(): void {
    const socket = spawnSync('tmux', ['-L', this.server, 'display-message', '-p', '#{socket_path}'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
    spawnSync('tmux', ['-L', this.server, 'kill-server'], { timeout: 10_000 });
    if (socket.includes(this.server)) rmSync(socket, { force: true });
  }
}
