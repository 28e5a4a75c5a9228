/**
 * `ctop advise`: measure a window (or read a recording with --replay),
 * gather each namespace's ruleset, sysctls and (with --census) its census,
 * and print the pure plan (src/advise/report.ts): NOTRACK candidates with
 * their role, safety flags and rules, what keeps conntrack on, kernel-aware
 * sizing.
 */
import type { Command } from 'commander';
import { CtopError, ExitCode, describeError } from '../errors.js';
import { planAdvice, type AdviceCensus, type AdvicePlanInput, type AdviceReport, type NamespaceInput } from '../advise/report.js';
import type { RoleChoice } from '../advise/rules.js';
import { readRuleset } from '../source/ruleset.js';
import { formatAdvice } from '../format/adviceText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { LiveWindows } from '../source/windows.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { mergeWindows } from '../model/mergeWindows.js';
import { readWindows } from '../io/recording.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { censusOf, readPortCensus, type PortCensusRun } from '../source/portCensusSource.js';
import { onTermination } from '../util/signals.js';
import { addProbeOptions, censusMethodOption, durationFlag, jsonOption, probeSettings, replayOption, roleOption, topOption, type ProbeSettings } from './options.js';
import { jsonForTerminal } from '../util/sanitize.js';

export interface AdviseOptions extends ProbeSettings {
  durationMs: number;
  json: boolean;
  role: RoleChoice;
  top: number;
  census: boolean;
  /** census method: 'auto' counts in the kernel's hash walk where it runs, else a ctnetlink dump */
  occupancy: 'auto' | 'ctnetlink';
  /** a recording to advise on instead of measuring (no root): ports and sizing; rulesets and sysctls are unknown */
  replay?: string;
}

async function runAdvise(o: AdviseOptions): Promise<void> {
  if (o.replay !== undefined) return print(planAdvice(replayed(o.replay, o)), o);
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: 1000 });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    print(planAdvice(await measured(source, o)), o);
  } finally {
    source.close();
    stopListening();
  }
}

function print(report: AdviceReport, o: AdviseOptions): void {
  process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatAdvice(report)}\n`);
}

function busy(n: SnapshotV1['namespaces'][number]): boolean {
  return n.count > 0 || (n.inserts ?? 0) > 0 || n.drops > 0;
}

async function measured(source: KernelSource, o: AdviseOptions): Promise<AdvicePlanInput> {
  const live = new LiveWindows(source, thisHost(), { top: 0 });
  await live.start();
  process.stderr.write(`ctop: measuring for ${o.durationMs} ms\n`);
  const snap = await live.measure(o.durationMs);
  requirePortCounts(snap);
  const errors: string[] = [];
  const host = readHostFacts(errors);
  // One census of the whole table (the walk covers every namespace at once).
  let run: PortCensusRun | undefined;
  if (o.census) {
    try {
      run = await readPortCensus({ netns: o.netns, occupancy: o.occupancy });
    } catch (e) {
      errors.push(`census: ${describeError(e)}`);
    }
  }
  const namespaces = new Map<number, NamespaceInput>();
  for (const ref of source.watchedRefs()) {
    const row = snap.namespaces.find((n) => n.inode === ref.inode);
    // Without --netns, advise on namespaces that are doing something (and read only their rulesets).
    if (!row || (!o.netns && !busy(row))) continue;
    const ruleset = readRuleset(ref.path);
    const nsErrors: string[] = [];
    const facts = readNetnsFacts(ref.path, nsErrors);
    namespaces.set(ref.inode, { inode: ref.inode, ruleset, helperAutoAssign: facts.helperAutoAssign, timeoutsS: facts.timeoutsS, ...(run ? { census: censusOf(run, ref.inode) } : {}), errors: nsErrors });
  }
  const census: AdviceCensus | undefined = run
    ? { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs, remainingByState: run.remainingRead ? 'histogram' : 'unavailable' }
    : undefined;
  return { snapshot: snap, host, kernelRelease: snap.kernel, namespaces, oneNamespace: o.netns !== undefined, role: o.role, top: o.top, ...(census ? { census } : {}), errors };
}

/**
 * --replay: the recording's windows as one, the recording host's RAM and word
 * size from its header. Its rulesets, sysctls, helpers and slab were not
 * recorded: the advice ranks ports and sizes the table, and says what it could
 * not check.
 */
function replayed(file: string, o: AdviseOptions): AdvicePlanInput {
  if (o.census) {
    throw new CtopError('--census counts this host\'s table now; a replay has only what was recorded', 'drop --census to advise on the recording', ExitCode.usage);
  }
  const rec = readWindows(file);
  const snap = mergeWindows(rec.snapshots, 0);
  requirePortCounts(snap);
  const unknown = `not recorded: the ruleset and netfilter sysctls of ${snap.host} (${file} is a replay), so no rule was checked`;
  const namespaces = new Map<number, NamespaceInput>();
  for (const n of snap.namespaces) {
    namespaces.set(n.inode, { inode: n.inode, ruleset: { users: [], chains: [], errors: [unknown] }, helperAutoAssign: null, timeoutsS: {}, errors: [] });
  }
  return {
    snapshot: snap,
    host: { memBytes: rec.header.memTotalBytes ?? 0, wordBits: rec.header.wordBits === 32 ? 32 : 64, entryBytes: 0, helpers: [], modules: [] },
    kernelRelease: snap.kernel,
    namespaces,
    oneNamespace: o.netns !== undefined,
    role: o.role,
    top: o.top,
    errors: [],
  };
}

function requirePortCounts(snap: SnapshotV1): void {
  if (snap.probe.tier === 'stats') {
    throw new CtopError('advise needs per-port inserts, which the stats tier does not count (the fentry, kprobe and netfilter tiers do)', 'run `ctop doctor` to see why the BPF programs did not attach', ExitCode.kernel);
  }
}

export function registerAdvise(program: Command): void {
  addProbeOptions(
    program
      .command('advise')
      .description('NOTRACK candidates (ports and ranges, with their role, safety checks and rules), what keeps conntrack on, sizing advice')
      .addOption(durationFlag('length of the measuring window', '5s', { minMs: 200, maxMs: 3_600_000 }))
      .addOption(roleOption())
      .addOption(topOption('candidates per namespace', '5', { min: 1, max: 1000 }))
      .option('--census', 'count the table (as `ctop census` does: in the kernel where it permits, else a ctnetlink dump) for per-port occupancy and entries per TCP state')
      .addOption(censusMethodOption())
      .addOption(jsonOption('ctop.advice/v1'))
      .addOption(replayOption('advise on a recording (ctop record, or one `ctop snapshot --json`) instead of measuring: its ports, their roles and sizing; its host\'s rules were not recorded')),
  ).action((f: ProbeSettings & { duration: number; role: RoleChoice; top: number; census?: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean; replay?: string }) =>
    runAdvise({
      ...probeSettings(f),
      ...(f.replay !== undefined ? { replay: f.replay } : {}),
      durationMs: f.duration,
      role: f.role,
      top: f.top,
      census: f.census === true,
      occupancy: f.occupancy,
      json: f.json === true,
    }),
  );
}
