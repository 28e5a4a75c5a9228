/** `ctop snapshot`: watch for a window, then report what entered and what was refused. */
import type { Command } from 'commander';
import { CtopError, ExitCode, describeError } from '../errors.js';
import { buildCensus } from '../model/census.js';
import { mergeWindows } from '../model/mergeWindows.js';
import type { OccupancyInput } from '../model/occupancy.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { formatSnapshot } from '../format/snapshotText.js';
import { formatCensus } from '../format/censusText.js';
import { readWindows } from '../io/recording.js';
import { checkPrivileges } from '../preflight.js';
import { requireConntrackActive } from '../source/activity.js';
import { takeCensus } from '../source/censusSource.js';
import { hashWalker } from '../source/hashWalk.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { OccupancyCounter } from '../source/occupancyCensus.js';
import { LiveWindows, STEP_MS } from '../source/windows.js';
import { formatMs } from '../util/duration.js';
import { interruptible, maybeInjectFault, onTermination } from '../util/signals.js';
import { addProbeOptions, durationFlag, jsonOption, occupancyOption, probeSettings, replayOption, topOption, type OccupancyChoice, type ProbeSettings } from './options.js';
import { jsonForTerminal } from '../util/sanitize.js';

/** Distinct addresses the snapshot's census counts (the census command's default). */
const CENSUS_MAX_ADDRS = 65_536;

export interface SnapshotOptions extends ProbeSettings {
  durationMs: number;
  json: boolean;
  top: number;
  /** add a census of the table at the window's end */
  census?: boolean;
  /** count who holds the table at the window's end (default auto) */
  occupancy?: OccupancyChoice;
  /** a recording (or one snapshot) to read instead of the kernel: its windows as one */
  replay?: string;
}

async function runSnapshot(o: SnapshotOptions): Promise<void> {
  const snap = o.replay !== undefined ? replayed(o.replay, o) : await measured(o);
  process.stdout.write(
    o.json
      ? `${jsonForTerminal(snap)}\n`
      : `${formatSnapshot(snap)}\n${snap.census ? `\n${formatCensus(snap.census, o.top)}\n` : ''}`,
  );
}

function replayed(file: string, o: SnapshotOptions): SnapshotV1 {
  if (o.census) {
    throw new CtopError('--census counts this host\'s table now; a replay has only what was recorded', 'drop --census (a recorded census is shown when the file has one)', ExitCode.usage);
  }
  return mergeWindows(readWindows(file).snapshots, o.top);
}

async function measured(o: SnapshotOptions): Promise<SnapshotV1> {
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: STEP_MS });
  const windows = new LiveWindows(source, thisHost(), { top: o.top });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP']);
  // Ctrl-C ends the window early and still prints the report (a second one
  // kills ctop outright; the kernel then frees everything, nothing is pinned).
  const ctrlC = interruptible();
  // Who holds the table, counted just before the window closes; on the
  // function tiers the kernel's per-port live counts are read right after,
  // so the window's end carries the census forward to the last sample.
  const occupancyAtEnd = (): OccupancyInput | undefined => {
    if ((o.occupancy ?? 'auto') === 'off') return undefined;
    const counter = new OccupancyCounter({ target: source.targetRef(), method: o.occupancy === 'ctnetlink' ? 'ctnetlink' : 'auto' });
    try {
      const census = counter.take();
      const entriesAtCensus = source.portEntries();
      return { census, ...(entriesAtCensus ? { entriesAtCensus } : {}) };
    } catch (e) {
      // the window's counts stand without it: report them, and say what is missing
      process.stderr.write(`ctop: no occupancy in this report: the census failed: ${describeError(e)}\n`);
      return undefined;
    } finally {
      counter.close();
    }
  };
  try {
    const first = await windows.start();
    requireConntrackActive(first, source.watchedRefs(), 'inspect');
    maybeInjectFault();
    process.stderr.write(
      `ctop: ${first.probe.tier} tier, watching ${first.namespaces.length} namespace(s); sampling for ${formatMs(o.durationMs)}\n`,
    );
    const snap = await windows.measure(o.durationMs, { interrupted: ctrlC.interrupted, occupancyAtEnd });
    if (!o.census) return snap;
    // the window's rates already cover search_restart/chaintoolong: no extra window
    const census = buildCensus(
      await takeCensus({
        netns: o.netns, top: o.top, maxAddrs: CENSUS_MAX_ADDRS, occupancy: 'auto', chains: 'auto', rateWindowMs: 0,
        walker: (w) => hashWalker(w),
      }),
    );
    return { ...snap, census };
  } finally {
    source.close();
    ctrlC.dispose();
    stopListening();
  }
}

export function registerSnapshot(program: Command): void {
  addProbeOptions(
    program
      .command('snapshot')
      .description('watch for a window, then report table fill, rates, top ports and tuples, drops')
      .addOption(durationFlag('length of the window (500ms, 5s, 2m)', '5s', { minMs: 100, maxMs: 24 * 3_600_000 }))
      .addOption(jsonOption('ctop.snapshot/v1'))
      .addOption(topOption('rows of ports and tuples to keep (0: all)', '20', { min: 0, max: 1_000_000 }))
      .option('--census', 'add a census of the table at the window\'s end (`ctop census`; JSON: the `census` section)')
      .addOption(occupancyOption('count who holds the table at the window\'s end: in-kernel hash walk (auto, falls back to ctnetlink), ctnetlink dump, or off', ['auto', 'ctnetlink', 'off']))
      .addOption(replayOption('read a recording (ctop record, or one `ctop snapshot --json`) instead of the kernel: its windows as one')),
  ).action((f: ProbeSettings & { duration: number; json?: boolean; top: number; census?: boolean; occupancy: OccupancyChoice; replay?: string }) =>
    runSnapshot({
      ...probeSettings(f),
      ...(f.replay !== undefined ? { replay: f.replay } : {}),
      census: f.census === true,
      occupancy: f.occupancy,
      durationMs: f.duration,
      json: f.json === true,
      top: f.top,
    }),
  );
}
