/**
 * `ctop advise`: measure a window, gather each namespace's ruleset, sysctls
 * and (with --census) its census, and print the pure plan
 * (src/advise/report.ts): NOTRACK candidates with their role, safety flags
 * and rules, what keeps conntrack on, kernel-aware sizing.
 */
import { release } from 'node:os';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { planAdvice, type AdviceCensus, type NamespaceInput } from '../advise/report.js';
import type { RoleChoice } from '../advise/rules.js';
import { readRuleset } from '../source/ruleset.js';
import { formatAdvice } from '../format/adviceText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { LiveWindows } from '../source/windows.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { censusOf, readPortCensus, type PortCensusRun } from '../source/portCensusSource.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { addProbeFlags, parseProbeFlags, roleOption, type ProbeFlags, type ProbeSettings } from './probeFlags.js';

export interface AdviseOptions extends ProbeSettings {
  durationMs: number;
  json: boolean;
  role: RoleChoice;
  top: number;
  census: boolean;
  /** census method: 'auto' counts in the kernel's hash walk where it runs, else a ctnetlink dump */
  occupancy: 'auto' | 'ctnetlink';
}

export async function runAdvise(o: AdviseOptions): Promise<void> {
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: 1000 });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    const live = new LiveWindows(source, { host: hostName(), kernel: release() }, { top: 0 });
    await live.start();
    process.stderr.write(`ctop: measuring for ${o.durationMs} ms\n`);
    const snap = await live.measure(o.durationMs);
    if (snap.probe.tier === 'stats') {
      throw new CtopError('advise needs per-port inserts, which the stats tier does not count (the fentry, kprobe and netfilter tiers do)', 'run `ctop doctor` to see why the BPF programs did not attach', ExitCode.kernel);
    }
    const errors: string[] = [];
    const host = readHostFacts(errors);
    // One census of the whole table (the walk covers every namespace at once).
    let run: PortCensusRun | undefined;
    if (o.census) {
      try {
        run = await readPortCensus({ netns: o.netns, occupancy: o.occupancy });
      } catch (e) {
        errors.push(`census: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const namespaces = new Map<number, NamespaceInput>();
    for (const ref of source.watchedRefs()) {
      const row = snap.namespaces.find((n) => n.inode === ref.inode);
      if (!row || (!o.netns && row.count === 0 && !(row.inserts ?? 0) && row.drops === 0)) continue;
      const nsErrors: string[] = [];
      const facts = readNetnsFacts(ref.path, nsErrors);
      namespaces.set(ref.inode, {
        inode: ref.inode,
        ruleset: readRuleset(ref.path),
        helperAutoAssign: facts.helperAutoAssign,
        timeoutsS: facts.timeoutsS,
        ...(run ? { census: censusOf(run, ref.inode) } : {}),
        errors: nsErrors,
      });
    }
    const census: AdviceCensus | undefined = run
      ? { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs, remainingByState: run.remainingRead ? 'histogram' : 'unavailable' }
      : undefined;
    const report = planAdvice({ snapshot: snap, host, kernelRelease: release(), namespaces, oneNamespace: o.netns !== undefined, role: o.role, top: o.top, ...(census ? { census } : {}), errors });
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatAdvice(report)}\n`);
  } finally {
    source.close();
    stopListening();
  }
}

export function registerAdvise(program: Command): void {
  addProbeFlags(
    program
      .command('advise')
      .description('NOTRACK candidates (ports and ranges, with their role, safety checks and rules), what keeps conntrack on, sizing advice')
      .option('-d, --duration <time>', 'length of the measuring window', '5s')
      .addOption(roleOption())
      .option('--top <n>', 'candidates per namespace', '5')
      .option('--census', 'count the table (as `ctop census` does: in the kernel where it permits, else a ctnetlink dump) for per-port occupancy and entries per TCP state')
      .addOption(new Option('--occupancy <method>', 'census method: count during the in-kernel walk where it runs, or from a ctnetlink dump').choices(['auto', 'ctnetlink']).default('auto'))
      .option('--json', 'print the ctop.advice/v1 JSON document'),
  ).action((f: ProbeFlags & { duration: string; role: RoleChoice; top: string; census?: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean }) =>
    runAdvise({
      ...parseProbeFlags(f),
      durationMs: parseDurationMs(f.duration, '--duration', 200, 3_600_000),
      role: f.role,
      top: parseCount(f.top, '--top', 1, 1000),
      census: f.census === true,
      occupancy: f.occupancy,
      json: f.json === true,
    }),
  );
}
