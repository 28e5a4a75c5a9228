/**
 * `ctop validate`: proves a NOTRACK change on live traffic. In ctop's own
 * table it first loads counting-only rules for the ports (no verdict change)
 * and measures a window, then swaps in the notrack rules and measures a
 * second window of the same length; both under the same guard as
 * `ctop notrack apply` (backup, detached rollback watchdog). A passing
 * change stays pending for `ctop notrack confirm`; a failing one is rolled
 * back at once.
 */
import { release } from 'node:os';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { nftScript, type NotrackTarget, type Role } from '../advise/rules.js';
import { protoName, type L4 } from '../model/conntrack.js';
import { countersByComment, counterDelta, validate, type Validation, type ValidationWindow } from '../advise/validate.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import { LiveWindows } from '../source/windows.js';
import { censusOf, readPortCensus } from '../source/portCensusSource.js';
import type { OccupancyMethod } from '../model/census.js';
import { formatTable } from '../format/table.js';
import { formatMs, parseDurationMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { listOwnTableJson, nftCheck, nftLoad } from '../notrack/nft.js';
import { DEFAULT_STATE_DIR } from '../notrack/state.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';
import { parsePortSpecs } from './notrack.js';
import { rollBackNow, startGuardedChange, target } from '../notrack/guard.js';
import { percent } from '../util/text.js';
import { jsonForTerminal } from '../util/sanitize.js';

export const VALIDATION_SCHEMA = 'ctop.validation/v1';

export interface ValidateOptions extends ProbeSettings {
  ports: NotrackTarget[];
  durationMs: number;
  confirmWithinMs: number;
  stateDir: string;
  census: boolean;
  /** census method: 'auto' counts in the kernel's hash walk where it runs, else a ctnetlink dump */
  occupancy: 'auto' | 'ctnetlink';
  json: boolean;
}

/** How a window's entries were counted (the `ctop census` machinery). */
export interface WindowCensus {
  occupancy: OccupancyMethod;
  fallbackReason?: string;
  occupancyMs: number;
}

async function window(live: LiveWindows, netnsPath: string | undefined, inode: number, durationMs: number, o: ValidateOptions): Promise<{ w: ValidationWindow; census?: WindowCensus }> {
  const c0 = countersByComment(listOwnTableJson(netnsPath));
  live.reopen();
  const snap = await live.measure(durationMs);
  const c1 = countersByComment(listOwnTableJson(netnsPath));
  const insertsByPort: Record<string, number> = {};
  for (const p of snap.ports) {
    if (p.netns !== inode) continue;
    const key = `${protoName(p.protoNum)}/${p.port}`;
    insertsByPort[key] = (insertsByPort[key] ?? 0) + p.inserts;
  }
  let c: ReturnType<typeof censusOf> | undefined;
  let census: WindowCensus | undefined;
  if (o.census) {
    let run;
    try {
      run = await readPortCensus({ netns: netnsPath, occupancy: o.occupancy });
    } catch (e) {
      throw new CtopError(`validate: census: ${e instanceof Error ? e.message : String(e)}`, 'pass --no-census to validate without entry counts per port', ExitCode.failure);
    }
    c = censusOf(run, inode);
    census = { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs };
  }
  const w: ValidationWindow = {
    durationMs: snap.durationMs,
    insertsByPort,
    packetsByComment: counterDelta(c0, c1),
    entriesByPort: c ? c.byPort : null,
    count: snap.namespaces.find((n) => n.inode === inode)?.count ?? 0,
    max: snap.table.max,
  };
  return census ? { w, census } : { w };
}

function formatValidation(v: Validation, label: string, census: WindowCensus | undefined): string {
  const out = [`ctop validate in ${label}: ${v.ok ? 'PASS' : 'FAIL'}`];
  out.push(
    formatTable(
      ['port', 'inserts/s before', 'after', 'packets/s before', 'after', 'untracked pkts', 'entries before', 'left over'],
      v.ports.map((p) => [
        p.port,
        p.before.insertsPerSec,
        p.after.insertsPerSec,
        p.before.packetsPerSec,
        p.after.packetsPerSec,
        p.untrackedPackets,
        p.before.entries ?? 'n/a',
        p.leftoverEntries ?? 'n/a',
      ]),
    ),
  );
  out.push(census ? `entries counted by ${census.occupancy}${census.fallbackReason ? ` (in-kernel count not used: ${census.fallbackReason})` : ''}` : 'entries per port: not counted (--no-census)');
  out.push(`fill: ${percent(v.fill.before)} (${v.fill.countBefore} entries) -> ${percent(v.fill.after)} (${v.fill.countAfter}); left-over entries time out`);
  for (const p of v.ports) for (const x of p.problems) out.push(`${p.port}: ${x}`);
  return out.join('\n');
}

export async function runValidate(o: ValidateOptions): Promise<void> {
  checkPrivileges();
  const t = target(o.netns);
  const countScript = nftScript(o.ports, { countOnly: true });
  const notrackScript = nftScript(o.ports);
  nftCheck(countScript, t.netnsPath);
  nftCheck(notrackScript, t.netnsPath);
  const source = new KernelSource({ ...o, rescanMs: 60_000 });
  const live = new LiveWindows(source, { host: hostName(), kernel: release() }, { top: 0, tuples: false });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    const first = await live.start();
    if (first.probe.tier === 'stats') {
      throw new CtopError('validate needs per-port inserts, which the stats tier does not count (the fentry, kprobe and netfilter tiers do)', 'run `ctop doctor` to see why the BPF programs did not attach', ExitCode.kernel);
    }
    const change = await startGuardedChange(t, o.stateDir, 2 * o.durationMs + o.confirmWithinMs + 10_000, countScript);
    process.stderr.write(`ctop: measuring ${formatMs(o.durationMs)} before the change (counting rules only)\n`);
    let v: Validation;
    let censusMethods: { before: WindowCensus; after: WindowCensus } | undefined;
    try {
      const before = await window(live, t.netnsPath, t.inode, o.durationMs, o);
      nftLoad(notrackScript, t.netnsPath);
      process.stderr.write(`ctop: notrack rules loaded; measuring ${formatMs(o.durationMs)} after\n`);
      const after = await window(live, t.netnsPath, t.inode, o.durationMs, o);
      v = validate(o.ports, before.w, after.w);
      censusMethods = before.census && after.census ? { before: before.census, after: after.census } : undefined;
    } catch (e) {
      rollBackNow(t, change);
      throw e;
    }
    const report = { schema: VALIDATION_SCHEMA, netns: t.label, ...v, ...(censusMethods ? { census: censusMethods } : {}) };
    process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatValidation(v, t.label, censusMethods?.after)}\n`);
    if (!v.ok) {
      rollBackNow(t, change);
      throw new CtopError('validate: the change did not do what it should (see above); rolled back', 'check --role and --proto, and the rules named above', ExitCode.failure);
    }
    process.stderr.write(`ctop: the change is pending: \`ctop notrack confirm${o.netns ? ` --netns ${o.netns}` : ''}\` within ${formatMs(o.confirmWithinMs)} keeps it, otherwise it rolls back\n`);
  } finally {
    source.close();
    stopListening();
  }
}

export function registerValidate(program: Command): void {
  addProbeFlags(
    program
      .command('validate')
      .description('measure inserts and packets on ports before and after exempting them (the change stays pending for confirm)')
      .requiredOption('--port <port...>', 'PORT or PROTO/PORT (udp/5000, tcp/80)')
      .addOption(new Option('--proto <proto>', 'protocol of bare ports').choices(['udp', 'tcp']).default('udp'))
      .addOption(new Option('--role <role>', 'server: local service on PORT; client: remote PORT').choices(['server', 'client']).default('server'))
      .option('-d, --duration <time>', 'length of each of the two windows', '5s')
      .option('--confirm-within <time>', 'after the windows, roll back unless confirmed within this time', '60s')
      .option('--state-dir <dir>', 'where backups and the pending record live', DEFAULT_STATE_DIR)
      .option('--no-census', 'skip the census before and after (no entry counts per port)')
      .addOption(new Option('--occupancy <method>', 'census method: count during the in-kernel walk where it runs, or from a ctnetlink dump').choices(['auto', 'ctnetlink']).default('auto'))
      .option('--json', 'print the ctop.validation/v1 JSON document'),
  ).action((f: ProbeFlags & { port: string[]; proto: L4; role: Role; duration: string; confirmWithin: string; stateDir: string; census: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean }) =>
    runValidate({
      ...parseProbeFlags(f),
      ports: parsePortSpecs(f.port, f.proto, f.role),
      durationMs: parseDurationMs(f.duration, '--duration', 500, 600_000),
      confirmWithinMs: parseDurationMs(f.confirmWithin, '--confirm-within', 1000, 3_600_000),
      stateDir: f.stateDir,
      census: f.census,
      occupancy: f.occupancy,
      json: f.json === true,
    }),
  );
}
