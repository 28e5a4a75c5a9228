/**
 * `ctop demo`: a first run that shows something on any machine. A throwaway
 * network namespace with conntrack on only there, a known traffic mix driven
 * until that namespace's table is full and conntrack drops packets, watched
 * by the live screen (or, with --no-ui, one window reported as snapshot and
 * advice). Nothing outlives the command: on a normal end, Ctrl-C, SIGTERM or
 * SIGHUP the traffic is killed and the namespace removed (with it its rule,
 * routes and entries); no sysctl is changed, since each namespace's count is
 * checked against the global limit on its own.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { buildSnapshot, type SnapshotV1 } from '../model/snapshot.js';
import { formatSnapshot } from '../format/snapshotText.js';
import { formatAdvice } from '../format/adviceText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { readHostFacts } from '../source/ctSettings.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { onTermination, sleepMs } from '../util/signals.js';
import { createDemoNetns, removeDemoNetns, removeStaleDemoNetns } from '../demo/demoNetns.js';
import { describePlan, fullDemoProblem, planDemo, type DemoPlan } from '../demo/plan.js';
import { checkTrafficTools, startDemoTraffic, type DemoTraffic } from '../demo/traffic.js';
import { adviseOnWindow, type AdviceReport } from './advise.js';

export const DEMO_SCHEMA = 'ctop.demo/v1';

/** With the live screen the traffic runs until you quit, and at most this long. */
const UI_TRAFFIC_MAX_MS = 30 * 60_000;
const UI_READ_PAUSE_MS = 3000;
const SETTLE_MS = 200;
/** The probe's map sizes: the defaults of every other command. */
const PROBE = { tier: 'auto' as const, maxPorts: 8192, maxTuples: 16_384, maxDropTuples: 4096 };

export interface DemoOptions {
  ui: boolean;
  durationMs: number;
  json: boolean;
  size: 'full' | 'small';
  intervalMs: number;
  top: number;
}

export interface DemoReport {
  schema: typeof DEMO_SCHEMA;
  plan: DemoPlan;
  namespace: string;
  snapshot: SnapshotV1;
  advice: AdviceReport;
}

function readNumber(path: string, re: RegExp): number {
  try {
    const m = re.exec(readFileSync(path, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function makePlan(size: 'full' | 'small'): DemoPlan {
  const max = readNumber('/proc/sys/net/netfilter/nf_conntrack_max', /^(\d+)/);
  if (max <= 0) {
    throw new CtopError(
      'demo: net.netfilter.nf_conntrack_max is not readable, or 0 (no limit): there is no table to fill',
      'the kernel needs conntrack (CONFIG_NF_CONNTRACK); `ctop doctor` shows what this one has',
      ExitCode.kernel,
    );
  }
  const plan = planDemo({ size, max, entryBytes: readHostFacts([]).entryBytes });
  const problem = fullDemoProblem(plan, readNumber('/proc/meminfo', /^MemAvailable:\s+(\d+) kB/m) * 1024);
  if (problem) throw new CtopError(`demo: ${problem}`, '`ctop demo --small` runs the same traffic mix in a fraction of the table (no drops)', ExitCode.failure);
  return plan;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  checkPrivileges();
  if (o.ui && !(process.stdout.isTTY && process.stdin.isTTY)) {
    throw new CtopError('the live screen needs a terminal', 'in a pipe or a script use `ctop demo --no-ui` (with --json for one document)', ExitCode.usage);
  }
  checkTrafficTools();
  const plan = makePlan(o.size);
  removeStaleDemoNetns();
  const ns = createDemoNetns();
  let traffic: DemoTraffic | undefined;
  let removed = false;
  const cleanup = (): void => {
    traffic?.stop();
    if (!removed) removeDemoNetns(ns);
    removed = true;
  };
  // Ctrl-C, SIGTERM, SIGHUP and a crash (cli.ts runs the cleanups); 'exit' for the rest
  const stopListening = onTermination(cleanup);
  process.once('exit', cleanup);
  process.stderr.write(`ctop demo: a throwaway network namespace ${ns}, conntrack on only there; ${describePlan(plan)}\n`);
  try {
    if (o.ui) {
      // the screen is about to cover this: give the plan a moment to be read
      process.stderr.write(`ctop demo: the live screen opens in ${UI_READ_PAUSE_MS / 1000} s; q quits and removes everything\n`);
      await sleepMs(UI_READ_PAUSE_MS);
      // loaded here: only the live screen needs blessed
      const { runTop } = await import('./top.js');
      await runTop({
        ...PROBE,
        netns: ns,
        intervalMs: o.intervalMs,
        onSourceStarted: () => {
          traffic = startDemoTraffic(ns, plan, UI_TRAFFIC_MAX_MS);
        },
      });
      cleanup();
      process.stderr.write(`ctop demo: ${ns} and its traffic are gone.\n${nextSteps()}`);
    } else {
      await runWindow(ns, plan, o, (t) => (traffic = t));
    }
  } finally {
    stopListening();
    process.removeListener('exit', cleanup);
    cleanup();
  }
}

async function runWindow(ns: string, plan: DemoPlan, o: DemoOptions, started: (t: DemoTraffic) => void): Promise<void> {
  const source = new KernelSource({ ...PROBE, netns: ns, rescanMs: 1000 });
  try {
    await source.start();
    const first = source.sample();
    const traffic = startDemoTraffic(ns, plan, o.durationMs + 5000);
    started(traffic);
    process.stderr.write(`ctop demo: ${first.probe.tier} tier; traffic for ${Math.round(o.durationMs / 1000)} s\n`);
    // the window ends at --duration, or at once when the traffic fails
    const failed = new Promise<void>((resolve) => void traffic.done.then(() => traffic.errors.length > 0 && resolve()));
    await Promise.race([sleepMs(o.durationMs), failed]);
    // the traffic stops before the window closes, so that the kernel's drop
    // statistic and the programs' counts are read at rest (packets still in
    // the loopback backlog are processed within milliseconds)
    traffic.stop();
    await sleepMs(SETTLE_MS);
    const last = source.sample();
    if (traffic.errors.length > 0) {
      throw new CtopError(`demo: the traffic failed: ${traffic.errors.join('; ')}`, 'the tools come from `npm run build:tools`; `ctop doctor` checks the kernel side', ExitCode.failure);
    }
    const snapshot = buildSnapshot(first, last, { host: hostName(), kernel: release(), top: o.top });
    const advice = await adviseOnWindow(source, snapshot, { netns: ns, role: 'server', top: 5, census: false, occupancy: 'auto' });
    const report: DemoReport = { schema: DEMO_SCHEMA, plan, namespace: ns, snapshot, advice };
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatSnapshot(snapshot)}\n\n${formatAdvice(advice)}\n\n${nextSteps()}`);
  } finally {
    source.close();
  }
}

function nextSteps(): string {
  return (
    'On a real server: `ctop doctor` (is conntrack on, and why), `ctop` (the live screen),\n' +
    '`ctop snapshot` and `ctop advise` (what fills the table and what to do about it).\n'
  );
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('a throwaway namespace filled to its conntrack limit by a known traffic mix, on the live screen; removed at exit')
    .option('--no-ui', 'no live screen: run for --duration, then print the snapshot and the advice')
    .option('-d, --duration <time>', 'with --no-ui: the length of the window', '15s')
    .option('--json', 'with --no-ui: one ctop.demo/v1 document holding the plan, the snapshot and the advice')
    .option('--small', 'a fraction of the table (at most 32,768 entries): the traffic mix without table-full drops')
    .option('-i, --interval <time>', 'live screen refresh interval', '1s')
    .option('--top <n>', 'with --no-ui: rows of ports and tuples', '10')
    .action((f: { ui: boolean; duration: string; json?: boolean; small?: boolean; interval: string; top: string }) => {
      if (f.json && f.ui) throw new CtopError('--json needs --no-ui', 'ctop demo --no-ui --json', ExitCode.usage);
      return runDemo({
        ui: f.ui,
        durationMs: parseDurationMs(f.duration, '--duration', 2000, 3_600_000),
        json: f.json === true,
        size: f.small ? 'small' : 'full',
        intervalMs: parseDurationMs(f.interval, '--interval', 100, 60_000),
        top: parseCount(f.top, '--top', 1, 1000),
      });
    });
}
