/**
 * `ctop advise`: measure a window, then for each namespace with traffic rank
 * NOTRACK candidates with their safety flags and rules, say what keeps
 * conntrack on, and give kernel-aware sizing advice. The advisors are pure
 * (src/advise); this module gathers their inputs.
 */
import { release } from 'node:os';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { adviseNotrack, type NotrackAdvice } from '../advise/notrack.js';
import { adviseSizing, type SizingAdvice } from '../advise/sizing.js';
import { keepsOn, type KeepsOnReport } from '../advise/keepsOn.js';
import type { Role } from '../advise/rules.js';
import { readRuleset } from '../source/ruleset.js';
import { formatAdvice } from '../format/adviceText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { LiveWindows } from '../source/windows.js';
import { forNamespace } from '../model/snapshot.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { censusOf, readPortCensus, type PortCensusRun } from '../source/portCensusSource.js';
import type { OccupancyMethod } from '../model/census.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';

export const ADVICE_SCHEMA = 'ctop.advice/v1';

export interface NamespaceAdvice {
  inode: number;
  name: string;
  entries: number;
  notrack: NotrackAdvice;
  keepsOn: KeepsOnReport;
  sizing: SizingAdvice;
  errors: string[];
}

/** How --census counted (the `ctop census` machinery): absent without --census. */
export interface AdviceCensus {
  occupancy: OccupancyMethod;
  /** why the in-kernel count was not used */
  fallbackReason?: string;
  occupancyMs: number;
  /** seconds left on TCP entries: 'histogram' (per state, 4 slots per power of two; sizing gives wouldFree as a range), or
   * 'unavailable' (the in-kernel walk without the kernel's HZ) */
  remainingByState: 'histogram' | 'unavailable';
}

/** The walk reads nf_conn.timeout in jiffies and needs CONFIG_HZ to turn it into seconds. */
export const REMAINING_UNAVAILABLE = 'the census could not read entry timeouts (kernel HZ unknown: no kernel config for libbpf)';

export interface AdviceReport {
  schema: typeof ADVICE_SCHEMA;
  host: string;
  kernel: string;
  durationMs: number;
  probeTier: string;
  census?: AdviceCensus;
  namespaces: NamespaceAdvice[];
  errors: string[];
}

export interface AdviseOptions extends ProbeSettings {
  durationMs: number;
  json: boolean;
  role: Role;
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
    const hostErrors: string[] = [];
    const host = readHostFacts(hostErrors);
    const refs = new Map(source.watchedRefs().map((r) => [r.inode, r]));
    // One census of the whole table (the walk covers every namespace at once).
    let run: PortCensusRun | undefined;
    if (o.census) {
      try {
        run = await readPortCensus({ netns: o.netns, occupancy: o.occupancy });
      } catch (e) {
        hostErrors.push(`census: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const namespaces: NamespaceAdvice[] = [];
    for (const n of snap.namespaces) {
      const ref = refs.get(n.inode);
      const busy = n.count > 0 || (n.inserts ?? 0) > 0 || n.drops > 0;
      // Without --netns, advise on namespaces that are doing something.
      if (!ref || (!o.netns && !busy)) continue;
      const errors: string[] = [];
      const rs = readRuleset(ref.path);
      errors.push(...rs.errors);
      const facts = readNetnsFacts(ref.path, errors);
      const census = run ? censusOf(run, n.inode) : undefined;
      const s = forNamespace(snap, n.inode);
      namespaces.push({
        inode: n.inode,
        name: n.name,
        entries: n.count,
        notrack: adviseNotrack({
          snapshot: s,
          users: rs.users,
          chains: rs.chains,
          helpers: host.helpers,
          helperAutoAssign: facts.helperAutoAssign,
          ...(census ? { census } : {}),
          role: o.role,
          limit: o.top,
        }),
        keepsOn: keepsOn({ users: rs.users, active: busy, helpers: host.helpers, modules: host.modules, errors: rs.errors }),
        sizing: adviseSizing({
          memBytes: host.memBytes,
          wordBits: host.wordBits,
          kernelRelease: release(),
          max: snap.table.max,
          buckets: snap.table.buckets,
          count: n.count,
          entryBytes: host.entryBytes,
          timeoutsS: facts.timeoutsS,
          ...(census
            ? {
                entriesByState: census.entriesByState,
                ...(census.remainingHistogramByState ? { remainingHistogramByState: census.remainingHistogramByState } : { remainingUnavailable: REMAINING_UNAVAILABLE }),
              }
            : {}),
        }),
        errors,
      });
    }
    const report: AdviceReport = {
      schema: ADVICE_SCHEMA,
      host: hostName(),
      kernel: release(),
      durationMs: snap.durationMs,
      probeTier: snap.probe.tier,
      ...(run ? { census: { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs, remainingByState: run.remainingRead ? ('histogram' as const) : ('unavailable' as const) } } : {}),
      namespaces,
      errors: [...hostErrors, ...snap.netnsErrors.map((e) => `${e.name}: ${e.error}`)],
    };
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
      .description('NOTRACK candidates with safety checks and rules, what keeps conntrack on, sizing advice')
      .option('-d, --duration <time>', 'length of the measuring window', '5s')
      .addOption(new Option('--role <role>', 'this host is the server of the ports (requests arrive) or the client (requests leave)').choices(['server', 'client']).default('server'))
      .option('--top <n>', 'candidates per namespace', '5')
      .option('--census', 'count the table (as `ctop census` does: in the kernel where it permits, else a ctnetlink dump) for per-port occupancy and entries per TCP state')
      .addOption(new Option('--occupancy <method>', 'census method: count during the in-kernel walk where it runs, or from a ctnetlink dump').choices(['auto', 'ctnetlink']).default('auto'))
      .option('--json', 'print the ctop.advice/v1 JSON document'),
  ).action((f: ProbeFlags & { duration: string; role: Role; top: string; census?: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean }) =>
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
