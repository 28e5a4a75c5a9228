/**
 * `ctop top` (also `ctop` with no command): the live screen. One refresh
 * clock: every --interval it reads the source once, updates the model once
 * and draws every panel once; keys redraw without reading the source. A
 * failed read shows a full-screen message and is retried every second.
 */
import type { Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { maybeInjectFault, onTermination } from '../util/signals.js';
import { Controller } from '../tui/controller.js';
import { ReplayWindows } from '../source/replay.js';
import { TuiScreen } from '../tui/screen.js';
import { LiveWindows } from '../source/windows.js';
import type { WindowSource } from '../model/snapshot.js';
import { startBackgroundCensus } from '../source/occupancy.js';
import { DEFAULT_BUDGET_SHARE } from '../model/occupancy.js';
import { addOccupancyOptions, addProbeOptions, confirmWithinOption, durationOption, occupancySettings, probeSettings, replayOption, stateDirOption, type OccupancyChoice, type OccupancySettings, type ProbeSettings } from './options.js';
import { oneLine } from '../util/text.js';
import { screenNotrackActions } from '../notrack/screenActions.js';
import { DEFAULT_STATE_DIR } from '../notrack/state.js';

export interface TopOptions extends ProbeSettings, Partial<OccupancySettings> {
  intervalMs: number;
  replay?: string;
  /** NOTRACK changes made from the screen: where their backups live, and how long until they roll back */
  stateDir?: string;
  confirmWithinMs?: number;
}

/** NO_COLOR (https://no-color.org): present and not empty turns colour off. */
function colourWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return !(env.NO_COLOR !== undefined && env.NO_COLOR !== '');
}

export function registerTop(program: Command): void {
  addOccupancyOptions(addProbeOptions(
    program
      .command('top', { isDefault: true })
      .description('the live screen: table fill, rates, top talkers (ports, 5-tuples, sources, namespaces, pods, port ranges, roles), drops, hash buckets, NOTRACK candidates (the default)')
      .addOption(durationOption('-i, --interval <time>', 'refresh interval (200ms, 1s, 5s)', '1s', { minMs: 100, maxMs: 3_600_000 }))
      .addOption(replayOption('play a recording (ctop record, or one `ctop snapshot --json`) instead of the kernel'))
      .addOption(stateDirOption('NOTRACK changes made from the screen (a): where backups and the pending record live'))
      .addOption(confirmWithinOption('NOTRACK changes made from the screen roll back unless confirmed (c) within this time', '30s')),
  ))
    // As the default command, `ctop frobnicate` lands here: say what is wrong rather than "too many arguments".
    .allowExcessArguments(true)
    .action((opts: ProbeSettings & { occupancy: OccupancyChoice; censusBudget: number; interval: number; replay?: string; stateDir: string; confirmWithin: number }, cmd: Command) => {
      if (cmd.args.length > 0) {
        throw new CtopError(`unknown command '${oneLine(cmd.args[0] ?? '', 60)}'`, '`ctop --help` lists the commands', ExitCode.usage);
      }
      return runTop({
        ...probeSettings(opts),
        ...occupancySettings(opts),
        intervalMs: opts.interval,
        replay: opts.replay,
        stateDir: opts.stateDir,
        confirmWithinMs: opts.confirmWithin,
      });
    });
}

function needTerminal(): void {
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    throw new CtopError('the live screen needs a terminal', 'for a report in a pipe or a file use `ctop snapshot` (or --json)', ExitCode.usage);
  }
}

async function openSource(o: TopOptions): Promise<{ source: WindowSource; kernel?: KernelSource }> {
  if (o.replay !== undefined) {
    // The file first: a wrong path is the likelier mistake.
    const replay = new ReplayWindows(o.replay);
    needTerminal();
    return { source: replay };
  }
  needTerminal();
  checkPrivileges();
  // Namespaces are looked for at the refresh pace (at most once a second).
  const kernel = new KernelSource({ ...o, rescanMs: Math.max(1000, o.intervalMs) });
  // tuples as columns: the screen builds rows only for the page it shows
  const live = new LiveWindows(kernel, thisHost(), { top: 0, unsorted: true, columns: true });
  await live.start();
  // who holds the table: counted in a thread of its own, within its CPU budget
  live.attachOccupancy(startBackgroundCensus(kernel, { occupancy: o.occupancy ?? 'auto', budgetShare: o.budgetShare ?? DEFAULT_BUDGET_SHARE }));
  return { source: live, kernel };
}

async function runTop(o: TopOptions): Promise<void> {
  // Errors before the screen opens (no root, a bad file) print as usual.
  const { source, kernel } = await openSource(o);
  // NOTRACK from the screen: advise's planner and apply's guarded change, on the live kernel only
  const actions = kernel ? screenNotrackActions({ refs: () => kernel.watchedRefs(), stateDir: o.stateDir ?? DEFAULT_STATE_DIR, confirmWithinMs: o.confirmWithinMs ?? 30_000 }) : undefined;
  const controller = new Controller(source, o.intervalMs, { color: colourWanted() }, actions);
  const screen = new TuiScreen({ color: colourWanted() });
  let timer: NodeJS.Timeout | undefined;
  const cleanup = (): void => {
    if (timer) clearTimeout(timer);
    screen.destroy();
    source.close();
  };
  // SIGTERM, SIGHUP, SIGINT and a crash (cli.ts runs the cleanups) all give the terminal back.
  const stopListening = onTermination(cleanup);
  const info = (): { label: string; replay?: { index: number; total: number; ended: boolean } } => ({
    label: source.label,
    ...(source.position ? { replay: source.position() } : {}),
  });
  const draw = (): void => screen.draw(controller.frame(screen.cols, screen.rows, info()));

  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const delayMs = controller.tick();
        draw();
        timer = setTimeout(tick, delayMs);
      };
      screen.onKey((ch, key) => {
        if (controller.key(ch, key)) {
          if (controller.quit) resolve();
          else draw();
        }
      });
      screen.onResize(draw);
      tick();
      maybeInjectFault(); // test-only (CTOP_TEST_FAULT=uncaught): proves a crash restores the terminal
    });
  } finally {
    stopListening();
    cleanup();
  }
}
