/**
 * `ctop record`: a series of snapshot windows written as a recording
 * (src/io/recording.ts). Each window is appended with one write the moment it
 * closes, so a recording stopped by a signal or a crash is readable up to its
 * last window. Ctrl-C ends the current window early and keeps it.
 */
import { closeSync, writeSync } from 'node:fs';
import { Command } from 'commander';
import { totalmem } from 'node:os';
import { CtopError, ExitCode } from '../errors.js';
import { mergeWindows } from '../model/mergeWindows.js';
import type { RecordingHeader } from '../model/recording.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { requireConntrackActive } from '../source/activity.js';
import { startBackgroundCensus } from '../source/occupancy.js';
import { DEFAULT_BUDGET_SHARE } from '../model/occupancy.js';
import { LiveWindows, STEP_MS } from '../source/windows.js';
import { headerLine, readWindows, snapshotLine } from '../io/recording.js';
import { openOutput, writeOutput } from '../io/output.js';
import { portsCsv, windowsCsv } from '../export/csv.js';
import { formatMs } from '../util/duration.js';
import { progress } from '../util/progress.js';
import { interruptible, onTermination } from '../util/signals.js';
import { addOccupancyOptions, addProbeOptions, durationFlag, durationOption, occupancySettings, probeSettings, replayOption, topOption, type OccupancyChoice, type OccupancySettings, type ProbeSettings } from './options.js';

export interface RecordOptions extends ProbeSettings, Partial<OccupancySettings> {
  durationMs: number;
  everyMs: number;
  out: string;
  top: number;
  csv?: string;
  csvPorts?: string;
  /** a recording to copy instead of the kernel: its windows, each cut to `top` rows */
  replay?: string;
}
/** A window cut shorter than this by Ctrl-C is not worth a line. */
const MIN_PARTIAL_MS = 200;

function detail(s: SnapshotV1): string {
  const ins = s.rates.insertsPerSec === null ? 'n/a' : s.rates.insertsPerSec.toLocaleString('en-US');
  return `fill ${(s.table.fillRatio * 100).toFixed(1)}%, ${s.table.count.toLocaleString('en-US')} entries, ${ins} inserts/s, ${s.rates.dropsPerSec} drops/s`;
}

function writeCsv(o: RecordOptions, windows: SnapshotV1[]): void {
  if (o.csv) writeOutput(o.csv, windowsCsv(windows));
  if (o.csvPorts) writeOutput(o.csvPorts, portsCsv(windows));
}

/** --replay: the file's windows, each cut to --top rows, written as a new recording. */
function recordReplay(file: string, o: RecordOptions): void {
  const rec = readWindows(file);
  const windows = rec.snapshots.map((w) => mergeWindows([w], o.top));
  const { schema: _schema, ...header } = rec.header;
  const fd = openOutput(o.out);
  try {
    writeSync(fd, `${headerLine(header)}\n`);
    for (const w of windows) writeSync(fd, `${snapshotLine(w)}\n`);
  } finally {
    closeSync(fd);
  }
  writeCsv(o, windows);
  process.stderr.write(`ctop: wrote ${windows.length} window(s) from ${file} to ${o.out}\n`);
}

async function runRecord(o: RecordOptions): Promise<void> {
  if (o.replay !== undefined) return recordReplay(o.replay, o);
  if (o.everyMs > o.durationMs) {
    throw new CtopError(`--every ${formatMs(o.everyMs)} is longer than --duration ${formatMs(o.durationMs)}`, 'record for at least one window', ExitCode.usage);
  }
  checkPrivileges();
  let fd = -1;
  const source = new KernelSource({ ...o, rescanMs: STEP_MS });
  const meta = thisHost();
  const live = new LiveWindows(source, meta, { top: o.top });
  const stopListening = onTermination(() => {
    live.close();
    if (fd >= 0) closeSync(fd);
  }, ['SIGTERM', 'SIGHUP']);
  const ctrlC = interruptible();
  let interrupted = false;
  void ctrlC.interrupted.then(() => {
    interrupted = true;
  });
  const bar = progress();
  const windows: SnapshotV1[] = [];
  let closed = false;
  try {
    const first = await live.start();
    requireConntrackActive(first, source.watchedRefs(), 'record');
    // Opened only now: a refused recording leaves no empty file behind.
    fd = openOutput(o.out);
    const header: Omit<RecordingHeader, 'schema'> = { ...meta, startedAt: first.wallTime, everyMs: o.everyMs, memTotalBytes: totalmem(), wordBits: process.arch.endsWith('64') ? 64 : 32 };
    writeSync(fd, `${headerLine(header)}\n`);
    // who holds the table: counted in a thread of its own, within its CPU budget; each window carries the latest census
    live.attachOccupancy(startBackgroundCensus(source, { occupancy: o.occupancy ?? 'auto', budgetShare: o.budgetShare ?? DEFAULT_BUDGET_SHARE }));
    const total = Math.floor(o.durationMs / o.everyMs);
    process.stderr.write(
      `ctop: ${first.probe.tier} tier, watching ${first.namespaces.length} namespace(s); recording ${total} window(s) of ${formatMs(o.everyMs)} to ${o.out}\n`,
    );
    for (let i = 1; i <= total && !interrupted; i++) {
      // Window ends are fixed from the start, so sampling time does not drift the series.
      const snap = await live.measureUntil(first.monoMs + i * o.everyMs, { interrupted: ctrlC.interrupted });
      if (interrupted && snap.durationMs < MIN_PARTIAL_MS) break;
      writeSync(fd, `${snapshotLine(snap)}\n`);
      windows.push(snap);
      bar.step(i, total, detail(snap));
    }
    bar.end();
    closeSync(fd);
    closed = true;
    writeCsv(o, windows);
    process.stderr.write(`ctop: wrote ${windows.length} window(s) to ${o.out}${interrupted ? ' (stopped early)' : ''}\n`);
  } finally {
    bar.end();
    if (!closed && fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // already closed by a signal handler
      }
    }
    live.close();
    ctrlC.dispose();
    stopListening();
  }
}

export function registerRecord(program: Command): void {
  addOccupancyOptions(addProbeOptions(
    program
      .command('record')
      .description('record a series of snapshot windows to a file (JSON Lines), for diff, report and export-csv')
      .requiredOption('-o, --output <file>', 'the recording to write (ctop.recording/v1, JSON Lines)')
      .addOption(durationFlag('how long to record (10s, 10m, 2h)', '10m', { minMs: 200, maxMs: 7 * 24 * 3_600_000 }))
      .addOption(durationOption('--every <time>', 'length of each window', '10s', { minMs: 200, maxMs: 24 * 3_600_000 }))
      .addOption(topOption('ports and tuples kept per window (0: all)', '20', { min: 0, max: 1_000_000 }))
      .option('--csv <file>', 'also write the windows as CSV when done')
      .option('--csv-ports <file>', 'also write per-window port rows as CSV (long format) when done')
      .addOption(replayOption('copy a recording (or one `ctop snapshot --json`) instead of reading the kernel: its windows, each cut to --top rows (--duration and --every do not apply)')),
  )).action((f: ProbeSettings & { occupancy: OccupancyChoice; censusBudget: number; output: string; duration: number; every: number; top: number; csv?: string; csvPorts?: string; replay?: string }) =>
    runRecord({
      ...probeSettings(f),
      ...occupancySettings(f),
      ...(f.replay !== undefined ? { replay: f.replay } : {}),
      out: f.output,
      durationMs: f.duration,
      everyMs: f.every,
      top: f.top,
      ...(f.csv !== undefined ? { csv: f.csv } : {}),
      ...(f.csvPorts !== undefined ? { csvPorts: f.csvPorts } : {}),
    }),
  );
}
