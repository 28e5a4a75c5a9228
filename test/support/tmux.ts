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

  /** Runs ctop with `args` in a new pane of cols x rows; the shell prints ctop's exit status after. */
  start(args: string[], size: [number, number] = [80, 24]): void {
    this.session = `s${++this.sessions}`;
    const cmd = `env -u NO_COLOR LANG=C.UTF-8 TERM=xterm-256color ${q(process.execPath)} ${q(CLI)} ${args.map(q).join(' ')}; echo "ctop-exit=$?"; exec sleep 900`;
    this.tmux('new-session', '-d', '-s', this.session, '-x', String(size[0]), '-y', String(size[1]), cmd);
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-t', this.session);
  }

  keys(...k: string[]): void {
    this.tmux('send-keys', '-t', this.session, ...k);
  }

  /** The screen once it shows what `test` wants and holds still for one more poll. */
  async waitFor(test: (s: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      last = this.screen();
      if (test(last)) {
        await new Promise((r) => setTimeout(r, 40));
        if (this.screen() === last) return last;
        continue;
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; screen:\n${last}`);
      await new Promise((r) => setTimeout(r, 100));
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
