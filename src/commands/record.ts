/**
 * `ctop record`: a series of snapshot windows written as a recording
 * (src/io/recording.ts). Each window is appended with one write the moment it
 * closes, so a recording stopped by a signal or a crash is readable up to its
 * last window. Ctrl-C ends the current window early and keeps it.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Command } from 'commander';
import { release, totalmem } from 'node:os';
import { CtopError, ExitCode } from '../errors.js';
import { buildSnapshot, type SnapshotV1 } from '../model/snapshot.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { DEFAULT_BUDGET_SHARE, startBackgroundCensus, type BackgroundCensus } from '../source/occupancy.js';
import { addOccupancyFlags, parseOccupancyFlags, type OccupancyFlags, type OccupancySettings } from './occupancyFlags.js';
import { conntrackBusy } from '../source/activity.js';
import { readRuleset } from '../source/ruleset.js';
import { keepsConntrackOn } from '../model/ruleset.js';
import { headerLine, snapshotLine } from '../io/recording.js';
import { writeOutput } from '../io/output.js';
import { portsCsv, windowsCsv } from '../export/csv.js';
import { formatMs, parseCount, parseDurationMs } from '../util/duration.js';
import { progress } from '../util/progress.js';
import { interruptible, onTermination, sleepMs } from '../util/signals.js';
import type { Sample } from '../model/sample.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';

export interface RecordOptions extends ProbeSettings, Partial<OccupancySettings> {
  durationMs: number;
  everyMs: number;
  out: string;
  top: number;
  csv?: string;
  csvPorts?: string;
}

/** New namespaces are picked up this often inside a window. */
const STEP_MS = 1000;
/** A window cut shorter than this by Ctrl-C is not worth a line. */
const MIN_PARTIAL_MS = 200;

function openOut(file: string): number {
  try {
    return openSync(file, 'w', 0o644);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CtopError(`cannot write ${file}: ${code === 'ENOENT' ? 'no such directory' : (code ?? String(e))}`, 'give -o a path in a directory you can write', ExitCode.usage);
  }
}

function detail(s: SnapshotV1): string {
  const ins = s.rates.insertsPerSec === null ? 'n/a' : s.rates.insertsPerSec.toLocaleString('en-US');
  return `fill ${(s.table.fillRatio * 100).toFixed(1)}%, ${s.table.count.toLocaleString('en-US')} entries, ${ins} inserts/s, ${s.rates.dropsPerSec} drops/s`;
}

export async function runRecord(o: RecordOptions): Promise<void> {
  if (o.everyMs > o.durationMs) {
    throw new CtopError(`--every ${formatMs(o.everyMs)} is longer than --duration ${formatMs(o.durationMs)}`, 'record for at least one window', ExitCode.usage);
  }
  checkPrivileges();
  let fd = -1;
  const source = new KernelSource({ ...o, rescanMs: STEP_MS });
  const stopListening = onTermination(() => {
    source.close();
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
  let census: BackgroundCensus | undefined;
  try {
    await source.start();
    let prev: Sample = source.sample();
    if (!conntrackBusy(prev) && !source.watchedRefs().some((r) => keepsConntrackOn(readRuleset(r.path).users))) {
      throw new CtopError(
        `conntrack is not active in the ${prev.namespaces.length} network namespace(s) ctop watches: no entries, no statistics, no rule that uses it`,
        'nothing to record here; ctop never turns conntrack on itself (`ctop doctor` shows what would)',
        ExitCode.conntrackInactive,
      );
    }
    // Opened only now: a refused recording leaves no empty file behind.
    fd = openOut(o.out);
    // who holds the table: counted in a thread of its own, within its CPU budget; each window carries the latest census
    census = startBackgroundCensus(source, { occupancy: o.occupancy ?? 'auto', budgetShare: o.budgetShare ?? DEFAULT_BUDGET_SHARE });
    const meta = { host: hostName(), kernel: release() };
    writeSync(fd, `${headerLine({ ...meta, startedAt: prev.wallTime, everyMs: o.everyMs, memTotalBytes: totalmem(), wordBits: process.arch.endsWith('64') ? 64 : 32 })}\n`);
    const total = Math.floor(o.durationMs / o.everyMs);
    process.stderr.write(
      `ctop: ${prev.probe.tier} tier, watching ${prev.namespaces.length} namespace(s); recording ${total} window(s) of ${formatMs(o.everyMs)} to ${o.out}\n`,
    );
    const start = performance.now();
    for (let i = 1; i <= total && !interrupted; i++) {
      // Window ends are fixed from the start, so sampling time does not drift the series.
      const end = start + i * o.everyMs;
      for (let left = end - performance.now(); left > 0 && !interrupted; left = end - performance.now()) {
        await Promise.race([sleepMs(Math.min(STEP_MS, left)), ctrlC.interrupted]);
        // only new namespaces need attention between window ends: a sample
        // taken and dropped here would swallow its tuple window
        if (!interrupted && end - performance.now() > 0) source.rescanIfDue();
      }
      const cur = source.sample();
      if (interrupted && cur.monoMs - prev.monoMs < MIN_PARTIAL_MS) break;
      const snap = buildSnapshot(prev, cur, { ...meta, top: o.top }, census?.input());
      writeSync(fd, `${snapshotLine(snap)}\n`);
      windows.push(snap);
      prev = cur;
      bar.step(i, total, detail(snap));
    }
    bar.end();
    closeSync(fd);
    closed = true;
    if (o.csv) writeOutput(o.csv, windowsCsv(windows));
    if (o.csvPorts) writeOutput(o.csvPorts, portsCsv(windows));
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
    census?.close();
    source.close();
    ctrlC.dispose();
    stopListening();
  }
}

export function registerRecord(program: Command): void {
  addOccupancyFlags(addProbeFlags(
    program
      .command('record')
      .description('record a series of snapshot windows to a file (JSON Lines), for diff, report and export-csv')
      .requiredOption('-o, --output <file>', 'the recording to write (ctop.recording/v1, JSON Lines)')
      .option('-d, --duration <time>', 'how long to record (10s, 10m, 2h)', '10m')
      .option('--every <time>', 'length of each window', '10s')
      .option('--top <n>', 'ports and tuples kept per window (0: all)', '20')
      .option('--csv <file>', 'also write the windows as CSV when done')
      .option('--csv-ports <file>', 'also write per-window port rows as CSV (long format) when done'),
  )).action((f: ProbeFlags & OccupancyFlags & { output: string; duration: string; every: string; top: string; csv?: string; csvPorts?: string }) =>
    runRecord({
      ...parseProbeFlags(f),
      ...parseOccupancyFlags(f),
      out: f.output,
      durationMs: parseDurationMs(f.duration, '--duration', 200, 7 * 24 * 3_600_000),
      everyMs: parseDurationMs(f.every, '--every', 200, 24 * 3_600_000),
      top: parseCount(f.top, '--top', 0, 1_000_000),
      ...(f.csv !== undefined ? { csv: f.csv } : {}),
      ...(f.csvPorts !== undefined ? { csvPorts: f.csvPorts } : {}),
    }),
  );
}
