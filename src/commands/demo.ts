/**
 * `ctop demo`: a first run that shows something on any machine. A throwaway
 * network namespace with conntrack on only there, a known traffic mix driven
 * until that namespace's table is full and conntrack drops packets, watched
 * by ctop's own commands run on that namespace: `ctop top --netns NS` (the
 * live screen), or with --no-ui `ctop snapshot` and `ctop advise` over the
 * same window. The demo owns the namespace, the traffic and those processes;
 * nothing outlives it: on a normal end, Ctrl-C, SIGTERM or SIGHUP the
 * processes are stopped and the namespace removed (with it its rule, routes
 * and entries). No sysctl is changed: the kernel checks each namespace's own
 * count against the global limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { checkPrivileges } from '../preflight.js';
import { readHostFacts } from '../source/ctSettings.js';
import { onTermination, sleepMs } from '../util/signals.js';
import { durationFlag, durationOption, topOption } from './options.js';
import { createDemoNetns, removeDemoNetns, removeStaleDemoNetns } from '../demo/demoNetns.js';
import { describePlan, fullDemoProblem, planDemo, type DemoPlan } from '../demo/plan.js';
import { checkTrafficTools, startDemoTraffic, type DemoTraffic } from '../demo/traffic.js';

const DEMO_SCHEMA = 'ctop.demo/v1';

/** This checkout's ctop, run by this node: the demo's views are ctop's own commands. */
const CTOP = fileURLToPath(new URL('../../bin/ctop', import.meta.url));
/** With the live screen the traffic runs until you quit, and at most this long. */
const UI_TRAFFIC_MAX_MS = 30 * 60_000;
const UI_READ_PAUSE_MS = 3000;
/** --no-ui: the traffic stops this long before the window closes, so that the
 * kernel's drop statistic and the programs' counts are read at rest. */
const REST_MS = 1000;
const READY_TIMEOUT_MS = 30_000;

export interface DemoOptions {
  ui: boolean;
  durationMs: number;
  json: boolean;
  size: 'full' | 'small';
  intervalMs: number;
  top: number;
}

/** The --no-ui --json document: `snapshot` is ctop.snapshot/v1, `advice` ctop.advice/v1. */
export interface DemoReport {
  schema: typeof DEMO_SCHEMA;
  plan: DemoPlan;
  namespace: string;
  /** the commands that measured, as a person would type them */
  commands: string[];
  snapshot: unknown;
  advice: unknown;
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

/** A ctop command run by the demo. */
interface CtopRun {
  proc: ChildProcess;
  /** Resolves once stderr matches `ready` (rejects if it exits first). */
  ready: Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function runCtop(args: string[], ready: RegExp | null): CtopRun {
  const proc = spawn(process.execPath, [CTOP, ...args], { stdio: ready === null ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const readyP =
    ready === null
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`ctop ${args[0]} did not start within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
          proc.stderr!.on('data', () => {
            if (ready.test(stderr)) {
              clearTimeout(t);
              resolve();
            }
          });
          void done.then((r) => {
            clearTimeout(t);
            reject(new Error(`ctop ${args[0]} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`));
          });
        });
  return { proc, ready: readyP, done };
}

async function runDemo(o: DemoOptions): Promise<void> {
  checkPrivileges();
  if (o.ui && !(process.stdout.isTTY && process.stdin.isTTY)) {
    throw new CtopError('the live screen needs a terminal', 'in a pipe or a script use `ctop demo --no-ui` (with --json for one document)', ExitCode.usage);
  }
  checkTrafficTools();
  const plan = makePlan(o.size);
  removeStaleDemoNetns();
  const ns = createDemoNetns();
  let traffic: DemoTraffic | undefined;
  const views = new Set<ChildProcess>();
  let removed = false;
  const cleanup = (): void => {
    // the live screen gets SIGTERM, so that it gives the terminal back; the
    // measuring commands pin nothing, and SIGKILL ends them at once
    for (const v of views) if (v.exitCode === null && v.signalCode === null) v.kill(o.ui ? 'SIGTERM' : 'SIGKILL');
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
      process.stderr.write(`ctop demo: the live screen (\`ctop top --netns ${ns}\`) opens in ${UI_READ_PAUSE_MS / 1000} s; q quits and removes everything\n`);
      await sleepMs(UI_READ_PAUSE_MS);
      const top = runCtop(['top', '--netns', ns, '--interval', `${o.intervalMs}ms`], null);
      views.add(top.proc);
      traffic = startDemoTraffic(ns, plan, UI_TRAFFIC_MAX_MS);
      const r = await top.done;
      cleanup();
      if (r.code !== 0) throw new CtopError(`demo: the live screen ended with ${r.code ?? r.signal}`, 'its own message, if any, is above', r.code ?? ExitCode.failure);
      process.stderr.write(`ctop demo: ${ns} and its traffic are gone.\n${nextSteps()}`);
    } else {
      await runWindow(ns, plan, o, views, (t) => (traffic = t));
    }
  } finally {
    stopListening();
    process.removeListener('exit', cleanup);
    cleanup();
  }
}

/** --no-ui: `ctop snapshot` and `ctop advise` on the namespace over one window of traffic. */
async function runWindow(ns: string, plan: DemoPlan, o: DemoOptions, views: Set<ChildProcess>, started: (t: DemoTraffic) => void): Promise<void> {
  const duration = `${o.durationMs}ms`;
  const json = o.json ? ['--json'] : [];
  const snapshotArgs = ['snapshot', '--netns', ns, '--duration', duration, '--top', String(o.top), ...json];
  const adviseArgs = ['advise', '--netns', ns, '--duration', duration, ...json];
  const runs = [runCtop(snapshotArgs, /sampling for/), runCtop(adviseArgs, /measuring for/)];
  for (const r of runs) views.add(r.proc);
  try {
    await Promise.all(runs.map((r) => r.ready));
  } catch (e) {
    throw new CtopError(`demo: ${e instanceof Error ? e.message : String(e)}`, '`ctop doctor` shows what this kernel allows', ExitCode.failure);
  }
  const traffic = startDemoTraffic(ns, plan, Math.max(1000, o.durationMs - REST_MS));
  started(traffic);
  process.stderr.write(`ctop demo: traffic for ${Math.round(o.durationMs / 1000)} s, measured by \`ctop ${snapshotArgs.join(' ')}\` and \`ctop ${adviseArgs.join(' ')}\`\n`);
  const [snap, advice] = await Promise.all(runs.map((r) => r.done));
  await traffic.done;
  if (traffic.errors.length > 0) {
    throw new CtopError(`demo: the traffic failed: ${traffic.errors.join('; ')}`, 'the tools come from `npm run build:tools`; `ctop doctor` checks the kernel side', ExitCode.failure);
  }
  for (const [r, what] of [[snap!, 'snapshot'], [advice!, 'advise']] as const) {
    if (r.code !== 0) {
      process.stderr.write(r.stderr);
      throw new CtopError(`demo: \`ctop ${what}\` ended with ${r.code ?? r.signal}`, 'its own message is above', r.code ?? ExitCode.failure);
    }
  }
  if (o.json) {
    const report: DemoReport = {
      schema: DEMO_SCHEMA,
      plan,
      namespace: ns,
      commands: [`ctop ${snapshotArgs.join(' ')}`, `ctop ${adviseArgs.join(' ')}`],
      snapshot: JSON.parse(snap!.stdout) as unknown,
      advice: JSON.parse(advice!.stdout) as unknown,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(`${snap!.stdout}\n${advice!.stdout}\n${nextSteps()}`);
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
    .option('--no-ui', 'no live screen: run for --duration, then print `ctop snapshot` and `ctop advise` of that window')
    .addOption(durationFlag('with --no-ui: the length of the window', '15s', { minMs: 3000, maxMs: 3_600_000 }))
    .option('--json', 'with --no-ui: one ctop.demo/v1 document holding the plan, the snapshot and the advice')
    .option('--small', 'a fraction of the table (at most 32,768 entries): the traffic mix without table-full drops')
    .addOption(durationOption('-i, --interval <time>', 'live screen refresh interval', '1s', { minMs: 100, maxMs: 60_000 }))
    .addOption(topOption('with --no-ui: rows of ports and tuples', '10', { min: 1, max: 1000 }))
    .action((f: { ui: boolean; duration: number; json?: boolean; small?: boolean; interval: number; top: number }) => {
      if (f.json && f.ui) throw new CtopError('--json needs --no-ui', 'ctop demo --no-ui --json', ExitCode.usage);
      return runDemo({
        ui: f.ui,
        durationMs: f.duration,
        json: f.json === true,
        size: f.small ? 'small' : 'full',
        intervalMs: f.interval,
        top: f.top,
      });
    });
}
