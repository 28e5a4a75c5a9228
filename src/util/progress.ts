/**
 * Progress for long-running commands, on stderr: a bar redrawn in place when
 * stderr is a terminal, else one plain line per step (logs and tests read
 * those), never both.
 */
export interface Progress {
  step(done: number, total: number, detail: string): void;
  end(): void;
}

const WIDTH = 24;

export function progress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  let drawn = false;
  return {
    step(done, total, detail) {
      if (tty) {
        const filled = total > 0 ? Math.round((done / total) * WIDTH) : 0;
        const bar = `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}]`;
        const cols = stream.columns ?? 80;
        stream.write(`\r\x1b[2K${`${bar} ${done}/${total} ${detail}`.slice(0, Math.max(10, cols - 1))}`);
        drawn = true;
      } else {
        stream.write(`ctop: window ${done}/${total}: ${detail}\n`);
      }
    },
    end() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}
