/** A program in a tmux pane, driven as a person would: keys in, screen out. */
import { spawnSync } from 'node:child_process';

const WAIT_MS = 10_000;
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Pane {
  /** The screen as text. */
  screen(): string;
  keys(...k: string[]): void;
  /** Polls until the screen matches and holds still for one more poll. */
  waitFor(what: RegExp, timeoutMs?: number): Promise<string>;
  /** Kills the tmux server (and with it the pane). Never throws. */
  kill(): void;
}

/** Starts argv in a detached session of a private tmux server; the pane's
 * shell prints `exit=N` after the program, then waits. */
export function startPane(argv: string[], size: [number, number] = [100, 30]): Pane {
  const server = `ctop-pane-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmux = (...args: string[]): string => {
    const r = spawnSync('tmux', ['-L', server, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const cmd = `env -u NO_COLOR LANG=C.UTF-8 TERM=xterm-256color ${argv.map(q).join(' ')}; echo "exit=$?"; exec sleep 600`;
  tmux('new-session', '-d', '-s', 'p', '-x', String(size[0]), '-y', String(size[1]), cmd);
  const screen = (): string => tmux('capture-pane', '-p', '-t', 'p');
  return {
    screen,
    keys: (...k) => void tmux('send-keys', '-t', 'p', ...k),
    async waitFor(what, timeoutMs = WAIT_MS) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = screen();
        if (what.test(s)) {
          await new Promise((r) => setTimeout(r, 50));
          if (screen() === s) return s;
          continue;
        }
        if (Date.now() > end) throw new Error(`timed out waiting for ${String(what)}; screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    kill() {
      spawnSync('tmux', ['-L', server, 'kill-server'], { timeout: 10_000 });
    },
  };
}
