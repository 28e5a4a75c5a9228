/**
 * `--replay FILE`: the windows of a recording, one per next(), so every
 * command that reads windows runs without root and tests see the same
 * windows every run. At the end next() gives undefined (the live screen
 * keeps the last window, its header says "(end)"); nothing loops.
 *
 * A recording whose later line is corrupt (cut short, bad JSON, a wrong
 * field) plays the windows before that line, then the source fails at it:
 * the live screen shows the error and, each second, reads the file again,
 * going on if the line has been fixed or completed. A file whose header is
 * bad fails at once, as any bad argument does.
 */
import { statSync } from 'node:fs';
import { MAX_RECORDING_BYTES } from '../io/recording.js';
import { readFileBounded } from '../util/boundedRead.js';
import { CtopError, ExitCode } from '../errors.js';
import { SNAPSHOT_SCHEMA, type SnapshotV1, type WindowSource } from '../model/snapshot.js';
import { parseRecording, readRecording } from '../io/recording.js';
import { validateSnapshot } from '../io/validate.js';
import { oneLine } from '../util/text.js';

interface Loaded {
  windows: SnapshotV1[];
  /** What stopped the reading before the end of the file, if anything. */
  error: CtopError | undefined;
}

/**
 * The windows of a recording up to its first bad line. The whole file goes
 * through readRecording (the strict reader); only when that fails are the
 * lines before the failure read one by one, so they can still be shown.
 */
export function loadRecordingPrefix(file: string, read: (f: string) => string = (f) => readFileBounded(f, MAX_RECORDING_BYTES).toString('utf8')): Loaded {
  try {
    return { windows: readRecording(file).snapshots, error: undefined };
  } catch (e) {
    if (!(e instanceof CtopError)) throw e;
    let text: string;
    try {
      text = read(file);
    } catch {
      throw e; // the file itself cannot be read: nothing to play
    }
    const lines = text.split('\n');
    // The header alone must be good (parseRecording checks it): otherwise this is not a recording at all.
    parseRecording(file, lines[0] ?? '');
    const windows: SnapshotV1[] = [];
    // The file normally ends with a newline: the empty string after it is not a line.
    const last = lines.length - 1 - (lines.at(-1)?.trim() === '' ? 1 : 0);
    for (let i = 1; i <= last; i++) {
      const line = lines[i]!;
      const bad = (problem: string): never => {
        throw new CtopError(`${oneLine(file, 200)}: line ${i + 1}: ${oneLine(problem)}`, e.hint, ExitCode.usage);
      };
      try {
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          bad(i === last ? 'cut short or corrupt (not valid JSON): the file looks truncated' : 'not valid JSON');
        }
        if ((v as { schema?: unknown } | null)?.schema !== SNAPSHOT_SCHEMA) bad(`not a ${SNAPSHOT_SCHEMA} document`);
        windows.push(validateSnapshot(v, bad));
      } catch (lineError) {
        return { windows, error: lineError as CtopError };
      }
    }
    // Line by line found nothing wrong, yet the strict reader refused the file: trust the strict reader.
    return { windows, error: e };
  }
}

function fileStamp(file: string): string {
  try {
    const st = statSync(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'gone';
  }
}

export class ReplayWindows implements WindowSource {
  readonly label: string;
  private windows: SnapshotV1[];
  private error: CtopError | undefined;
  private index = 0;
  /** The file's identity, size and mtime when last read: it is read again only when one changes. */
  private stamp: string;

  constructor(
    private readonly file: string,
    private readonly load: (file: string) => Loaded = loadRecordingPrefix,
  ) {
    this.label = `replay ${file}`;
    this.stamp = fileStamp(file);
    const first = this.load(file);
    if (first.windows.length === 0 && first.error) throw first.error;
    this.windows = first.windows;
    this.error = first.error;
  }

  next(): SnapshotV1 | undefined {
    if (this.index < this.windows.length) return this.windows[this.index++];
    if (!this.error) return undefined;
    // At the bad line: read the file again if it changed; it may have been fixed or completed meanwhile.
    const stamp = fileStamp(this.file);
    if (stamp === this.stamp) throw this.error;
    this.stamp = stamp;
    const again = this.load(this.file);
    this.windows = again.windows;
    this.error = again.error;
    if (this.index < this.windows.length) return this.windows[this.index++];
    if (this.error) throw this.error;
    return undefined;
  }

  position(): { index: number; total: number; ended: boolean } {
    return { index: this.index, total: this.windows.length, ended: this.index >= this.windows.length && !this.error };
  }

  close(): void {}
}
