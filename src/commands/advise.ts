/**
 * `ctop advise`: measure a window, then for each namespace with traffic rank
 * NOTRACK candidates with their safety flags and rules, say what keeps
 * conntrack on, and give kernel-aware sizing advice. The advisors are pure
 * (src/advise); this module gathers their inputs.
 */
import { release } from 'node:os';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode, describeError } from '../errors.js';
import { adviseNotrack, type NotrackAdvice } from '../advise/notrack.js';
import { adviseSizing, type SizingAdvice } from '../advise/sizing.js';
import { keepsOn, type KeepsOnReport } from '../advise/keepsOn.js';
import type { Role } from '../advise/rules.js';
import { readRuleset, type RulesetReading } from '../source/ruleset.js';
import { formatAdvice } from '../format/adviceText.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { LiveWindows } from '../source/windows.js';
import { forNamespace, type SnapshotV1 } from '../model/snapshot.js';
import { mergeWindows } from '../model/mergeWindows.js';
import { readWindows } from '../io/recording.js';
import { readHostFacts, readNetnsFacts, type HostFacts, type NetnsFacts } from '../source/ctSettings.js';
import { censusOf, readPortCensus, type PortCensusRun } from '../source/portCensusSource.js';
import type { OccupancyMethod } from '../model/census.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';
import { jsonForTerminal } from '../util/sanitize.js';

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
  /** a recording to advise on instead of measuring (no root): ports and sizing; rulesets and sysctls are unknown */
  replay?: string;
}

/** What one namespace's advice needs besides the window. */
interface NamespaceFacts {
  ruleset: RulesetReading;
  facts: NetnsFacts;
  errors: string[];
}

/** The advisors' inputs, gathered live from this host or from a recording. */
interface Gathered {
  snap: SnapshotV1;
  host: HostFacts;
  /** the advised host's name and kernel release */
  where: { host: string; kernel: string };
  /** a namespace's ruleset and sysctls; undefined: not one to advise on */
  namespace(inode: number): NamespaceFacts | undefined;
  run?: PortCensusRun;
  errors: string[];
}

export async function runAdvise(o: AdviseOptions): Promise<void> {
  if (o.replay !== undefined) return print(plan(replayed(o.replay, o), o), o);
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: 1000 });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    print(plan(await measured(source, o), o), o);
  } finally {
    source.close();
    stopListening();
  }
}

function print(report: AdviceReport, o: AdviseOptions): void {
  process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatAdvice(report)}\n`);
}

async function measured(source: KernelSource, o: AdviseOptions): Promise<Gathered> {
  const live = new LiveWindows(source, { host: hostName(), kernel: release() }, { top: 0 });
  await live.start();
  process.stderr.write(`ctop: measuring for ${o.durationMs} ms\n`);
  const snap = await live.measure(o.durationMs);
  requirePortCounts(snap);
  const errors: string[] = [];
  const host = readHostFacts(errors);
  const refs = new Map(source.watchedRefs().map((r) => [r.inode, r]));
  // One census of the whole table (the walk covers every namespace at once).
  let run: PortCensusRun | undefined;
  if (o.census) {
    try {
      run = await readPortCensus({ netns: o.netns, occupancy: o.occupancy });
    } catch (e) {
      errors.push(`census: ${describeError(e)}`);
    }
  }
  const namespace = (inode: number): NamespaceFacts | undefined => {
    const ref = refs.get(inode);
    if (!ref) return undefined;
    const ruleset = readRuleset(ref.path);
    const nsErrors = [...ruleset.errors];
    return { ruleset, facts: readNetnsFacts(ref.path, nsErrors), errors: nsErrors };
  };
  return { snap, host, where: { host: hostName(), kernel: release() }, namespace, ...(run ? { run } : {}), errors };
}

/**
 * --replay: the recording's windows as one, the recording host's RAM and word
 * size from its header. Its rulesets, sysctls, helpers and slab were not
 * recorded: the advice ranks ports and sizes the table, and says what it could
 * not check.
 */
function replayed(file: string, o: AdviseOptions): Gathered {
  if (o.census) {
    throw new CtopError('--census counts this host\'s table now; a replay has only what was recorded', 'drop --census to advise on the recording', ExitCode.usage);
  }
  const rec = readWindows(file);
  const snap = mergeWindows(rec.snapshots, 0);
  requirePortCounts(snap);
  const unknown = `not recorded: the ruleset and netfilter sysctls of ${snap.host} (${file} is a replay), so no rule was checked`;
  const host: HostFacts = { memBytes: rec.header.memTotalBytes ?? 0, wordBits: rec.header.wordBits === 32 ? 32 : 64, entryBytes: 0, helpers: [], modules: [] };
  const namespace = (): NamespaceFacts => ({
    ruleset: { users: [], chains: [], sources: [], errors: [unknown] },
    facts: { timeoutsS: {}, helperAutoAssign: null },
    errors: [unknown],
  });
  return { snap, host, where: { host: snap.host, kernel: snap.kernel }, namespace, errors: [] };
}

function requirePortCounts(snap: SnapshotV1): void {
  if (snap.probe.tier === 'stats') {
    throw new CtopError('advise needs per-port inserts, which the stats tier does not count (the fentry, kprobe and netfilter tiers do)', 'run `ctop doctor` to see why the BPF programs did not attach', ExitCode.kernel);
  }
}

function plan(g: Gathered, o: AdviseOptions): AdviceReport {
  const { snap, host, run } = g;
  const namespaces: NamespaceAdvice[] = [];
  for (const n of snap.namespaces) {
    const busy = n.count > 0 || (n.inserts ?? 0) > 0 || n.drops > 0;
    // Without --netns, advise on namespaces that are doing something.
    if (!o.netns && !busy) continue;
    const ns = g.namespace(n.inode);
    if (!ns) continue;
    const { ruleset: rs, facts, errors } = ns;
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
        kernelRelease: g.where.kernel,
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
  return {
    schema: ADVICE_SCHEMA,
    host: g.where.host,
    kernel: g.where.kernel,
    durationMs: snap.durationMs,
    probeTier: snap.probe.tier,
    ...(run ? { census: { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs, remainingByState: run.remainingRead ? ('histogram' as const) : ('unavailable' as const) } } : {}),
    namespaces,
    errors: [...g.errors, ...snap.netnsErrors.map((e) => `${e.name}: ${e.error}`)],
  };
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
      .option('--json', 'print the ctop.advice/v1 JSON document')
      .option('--replay <file>', 'advise on a recording (ctop record, or one `ctop snapshot --json`) instead of measuring: its ports and sizing; its host\'s rules were not recorded; needs no root'),
  ).action((f: ProbeFlags & { duration: string; role: Role; top: string; census?: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean; replay?: string }) =>
    runAdvise({
      ...parseProbeFlags(f),
      ...(f.replay !== undefined ? { replay: f.replay } : {}),
      durationMs: parseDurationMs(f.duration, '--duration', 200, 3_600_000),
      role: f.role,
      top: parseCount(f.top, '--top', 1, 1000),
      census: f.census === true,
      occupancy: f.occupancy,
      json: f.json === true,
    }),
  );
}
