/** `ctop snapshot`: watch for a window, then report what entered and what was refused. */
import { release } from 'node:os';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { buildSnapshot } from '../model/snapshot.js';
import { formatSnapshot } from '../format/snapshotText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { conntrackBusy } from '../source/activity.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';
import { readRuleset } from '../source/ruleset.js';
import { keepsConntrackOn } from '../model/ruleset.js';
import { formatMs, parseCount, parseDurationMs } from '../util/duration.js';
import { interruptible, maybeInjectFault, onTermination, sleepMs } from '../util/signals.js';
import { buildCensus } from '../model/census.js';
import { formatCensus } from '../format/censusText.js';
import { takeCensus } from '../source/censusSource.js';
import { hashWalker } from '../source/hashWalk.js';
import { OccupancyCounter } from '../source/occupancyCensus.js';
import type { OccupancyInput } from '../model/occupancy.js';

/** Distinct addresses the snapshot's census counts (the census command's default). */
const CENSUS_MAX_ADDRS = 65_536;

export interface SnapshotOptions extends ProbeSettings {
  durationMs: number;
  json: boolean;
  top: number;
  /** add a census of the table at the window's end */
  census?: boolean;
  /** count who holds the table at the window's end (default auto) */
  occupancy?: 'auto' | 'ctnetlink' | 'off';
}

/** The sampling step inside a window: new namespaces are picked up this often. */
const STEP_MS = 1000;

export async function runSnapshot(o: SnapshotOptions): Promise<void> {
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: STEP_MS });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP']);
  // Ctrl-C ends the window early and still prints the report (a second one
  // kills ctop outright; the kernel then frees everything, nothing is pinned).
  const ctrlC = interruptible();
  let interrupted = false;
  void ctrlC.interrupted.then(() => {
    interrupted = true;
  });
  try {
    await source.start();
    const first = source.sample();
    if (!conntrackBusy(first) && !source.watchedRefs().some((r) => keepsConntrackOn(readRuleset(r.path).users))) {
      throw new CtopError(
        `conntrack is not active in the ${first.namespaces.length} network namespace(s) ctop watches: no entries, no statistics, no rule that uses it`,
        'nothing to inspect here; ctop never turns conntrack on itself (`ctop doctor` shows what would)',
        ExitCode.conntrackInactive,
      );
    }
    maybeInjectFault();
    process.stderr.write(
      `ctop: ${first.probe.tier} tier, watching ${first.namespaces.length} namespace(s); sampling for ${formatMs(o.durationMs)}\n`,
    );
    const end = performance.now() + o.durationMs;
    for (let left = o.durationMs; left > 0 && !interrupted; left = end - performance.now()) {
      await Promise.race([sleepMs(Math.min(STEP_MS, left)), ctrlC.interrupted]);
      // counters are cumulative in the kernel: between the window's two
      // samples only new namespaces need attention, not the maps
      if (!interrupted && end - performance.now() > 0) source.rescanIfDue();
    }
    // Who holds the table, counted just before the window closes; on the
    // function tiers the kernel's per-port live counts are read right after,
    // so the window's end carries the census forward to the last sample.
    let occupancy: OccupancyInput | undefined;
    if ((o.occupancy ?? 'auto') !== 'off') {
      const census = new OccupancyCounter({ target: source.targetRef(), method: o.occupancy === 'ctnetlink' ? 'ctnetlink' : 'auto' }).take();
      const entriesAtCensus = source.portEntries();
      occupancy = { census, ...(entriesAtCensus ? { entriesAtCensus } : {}) };
    }
    const last = source.sample();
    const snap = buildSnapshot(first, last, { host: hostName(), kernel: release(), top: o.top }, occupancy);
    if (o.census) {
      // the window's rates already cover search_restart/chaintoolong: no extra window
      snap.census = buildCensus(
        await takeCensus({
          netns: o.netns, top: o.top, maxAddrs: CENSUS_MAX_ADDRS, occupancy: 'auto', chains: 'auto', rateWindowMs: 0,
          walker: (w) => hashWalker(w),
        }),
      );
    }
    process.stdout.write(
      o.json
        ? `${JSON.stringify(snap, null, 2)}\n`
        : `${formatSnapshot(snap)}\n${snap.census ? `\n${formatCensus(snap.census, o.top)}\n` : ''}`,
    );
  } finally {
    source.close();
    ctrlC.dispose();
    stopListening();
  }
}

export function registerSnapshot(program: Command): void {
  addProbeFlags(
    program
      .command('snapshot')
      .description('watch for a window, then report table fill, rates, top ports and tuples, drops')
      .option('-d, --duration <time>', 'length of the window (500ms, 5s, 2m)', '5s')
      .option('--json', 'print the ctop.snapshot/v1 JSON document')
      .option('--top <n>', 'rows of ports and tuples to keep (0: all)', '20')
      .option('--census', 'add a census of the table at the window\'s end (`ctop census`; JSON: the `census` section)')
      .addOption(
        new Option('--occupancy <method>', 'count who holds the table at the window\'s end: in-kernel hash walk (auto, falls back to ctnetlink), ctnetlink dump, or off')
          .choices(['auto', 'ctnetlink', 'off'])
          .default('auto'),
      ),
  ).action((opts: ProbeFlags & { duration: string; json?: boolean; top: string; census?: boolean; occupancy: string }) =>
    runSnapshot({
      ...parseProbeFlags(opts),
      census: opts.census === true,
      occupancy: opts.occupancy as 'auto' | 'ctnetlink' | 'off',
      durationMs: parseDurationMs(opts.duration, '--duration', 100, 24 * 3_600_000),
      json: opts.json === true,
      top: parseCount(opts.top, '--top', 0, 1_000_000),
    }),
  );
}
