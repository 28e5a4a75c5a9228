/**
 * `ctop validate`: proves a NOTRACK change on live traffic, namespace-wide.
 * In ctop's own table it first loads counting-only rules for every direction
 * of the ports (no verdict change) and measures a window; reads the role
 * from that window (--role auto); swaps in the notrack rules for the role
 * (the other directions still counted) and measures a second window of the
 * same length; judges both (src/advise/validate.ts). All under the same
 * guard as `ctop notrack apply`. A PASS leaves exactly apply's rules pending
 * for `ctop notrack confirm`; a FAIL or INCONCLUSIVE is rolled back at once.
 */
import type { Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { nftScript, portText, type L4, type RoleChoice } from '../advise/rules.js';
import { countersByComment, counterDelta, validate, type Validation, type ValidationWindow } from '../advise/validate.js';
import { describeTarget, resolveTargets } from '../advise/targets.js';
import { checkPrivileges } from '../preflight.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { LiveWindows } from '../source/windows.js';
import { censusOf, readPortCensus } from '../source/portCensusSource.js';
import { formatValidation, type WindowCensus } from '../format/validationText.js';
import { formatMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { listOwnTableJson, nftCheck, nftLoad } from '../notrack/nft.js';
import { rollBackNow, startGuardedChange, target } from '../notrack/guard.js';
import { parsePortSpecs, type PortSpec } from '../notrack/portSpec.js';
import { addProbeOptions, censusMethodOption, confirmWithinOption, durationFlag, jsonOption, probeSettings, protoOption, roleOption, stateDirOption, type ProbeSettings } from './options.js';
import { jsonForTerminal } from '../util/sanitize.js';

const VALIDATION_SCHEMA = 'ctop.validation/v2';

export interface ValidateOptions extends ProbeSettings {
  specs: PortSpec[];
  role: RoleChoice;
  durationMs: number;
  confirmWithinMs: number;
  stateDir: string;
  census: boolean;
  /** census method: 'auto' counts in the kernel's hash walk where it runs, else a ctnetlink dump */
  occupancy: 'auto' | 'ctnetlink';
  json: boolean;
}

/** One window: the namespace's new entries (ports and tuples), ctop's rule counters, the entry count at both ends. */
async function measure(live: LiveWindows, netnsPath: string | undefined, inode: number, durationMs: number, o: ValidateOptions): Promise<{ w: ValidationWindow; census?: WindowCensus }> {
  const c0 = countersByComment(listOwnTableJson(netnsPath));
  // the window holds only what follows the change just made
  const a = live.reopen();
  const snap = await live.measure(durationMs);
  const c1 = countersByComment(listOwnTableJson(netnsPath));
  let entriesByPort: Record<string, number> | null = null;
  let census: WindowCensus | undefined;
  if (o.census) {
    let run;
    try {
      run = await readPortCensus({ netns: netnsPath, occupancy: o.occupancy });
    } catch (e) {
      throw new CtopError(`validate: census: ${e instanceof Error ? e.message : String(e)}`, 'pass --no-census to validate without entry counts per port', ExitCode.failure);
    }
    entriesByPort = censusOf(run, inode).byPort;
    census = { occupancy: run.occupancy, ...(run.fallbackReason ? { fallbackReason: run.fallbackReason } : {}), occupancyMs: run.occupancyMs };
  }
  const w: ValidationWindow = {
    durationMs: snap.durationMs,
    ports: snap.ports.filter((p) => p.netns === inode),
    tuples: snap.tuples.filter((x) => x.netns === inode),
    tupleMapFull: Math.max(0, snap.overflow.tupleMapFull - a.totals.tupleOverflow),
    packetsByComment: counterDelta(c0, c1),
    entriesByPort,
    countStart: a.namespaces.find((n) => n.inode === inode)?.count ?? 0,
    countEnd: snap.namespaces.find((n) => n.inode === inode)?.count ?? 0,
    max: snap.table.max,
  };
  return census ? { w, census } : { w };
}

async function runValidate(o: ValidateOptions): Promise<void> {
  checkPrivileges();
  const t = target(o.netns);
  const specs = resolveTargets(o.specs, 'server', null);
  const countScript = nftScript(specs, 'count');
  nftCheck(countScript, t.netnsPath);
  const source = new KernelSource({ ...o, netns: t.netnsPath ?? o.netns, rescanMs: 60_000 });
  // tuples: the entries created by replies are found by their original source port
  const live = new LiveWindows(source, thisHost(), { top: 0, tuples: true });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    const first = await live.start();
    if (first.probe.tier === 'stats') {
      throw new CtopError('validate needs per-port inserts, which the stats tier does not count (the fentry, kprobe and netfilter tiers do)', 'run `ctop doctor` to see why the BPF programs did not attach', ExitCode.kernel);
    }
    const change = await startGuardedChange(t, o.stateDir, 2 * o.durationMs + o.confirmWithinMs + 30_000, countScript);
    process.stderr.write(`ctop: measuring ${formatMs(o.durationMs)} before the change (counting rules only)\n`);
    let v: Validation;
    let census: WindowCensus | undefined;
    let notrackScript: string;
    try {
      const before = await measure(live, t.netnsPath, t.inode, o.durationMs, o);
      const targets = resolveTargets(o.specs, o.role, before.w.ports);
      if (o.role === 'auto' && targets.some((x) => x.evidence.counts === null)) {
        throw new CtopError('validate: this probe tier does not count roles, so --role auto cannot infer one', 'name the role: --role server|client|local|forward', ExitCode.failure);
      }
      for (const x of targets) process.stderr.write(`ctop: ${describeTarget(x)}\n`);
      notrackScript = nftScript(targets);
      const measured = nftScript(targets, 'notrack+count');
      nftCheck(measured, t.netnsPath);
      nftLoad(measured, t.netnsPath);
      process.stderr.write(`ctop: notrack rules loaded; measuring ${formatMs(o.durationMs)} after\n`);
      const after = await measure(live, t.netnsPath, t.inode, o.durationMs, o);
      const retry = `ctop validate --port ${o.specs.map(portText).join(' ')}${o.netns ? ` --netns ${o.netns}` : ''}`;
      v = validate(targets, before.w, after.w, retry);
      census = after.census;
    } catch (e) {
      rollBackNow(t, change);
      throw e;
    }
    const report = { schema: VALIDATION_SCHEMA, netns: t.label, ...v, ...(census ? { census } : {}) };
    process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatValidation(v, t.label, census)}\n`);
    if (v.verdict !== 'PASS') {
      rollBackNow(t, change);
      throw new CtopError(
        `validate: ${v.verdict}: ${v.verdict === 'FAIL' ? 'the change did not do what it should' : 'nothing to judge'} (see above); rolled back`,
        v.verdict === 'FAIL' ? 'run what the lines above suggest' : 'run validate while the traffic flows',
        ExitCode.failure,
      );
    }
    // The pending change is exactly what `ctop notrack apply` would load (no extra counters).
    nftLoad(notrackScript, t.netnsPath);
    process.stderr.write(`ctop: the change is pending: \`ctop notrack confirm${o.netns ? ` --netns ${o.netns}` : ''}\` within ${formatMs(o.confirmWithinMs)} keeps it, otherwise it rolls back\n`);
  } finally {
    source.close();
    stopListening();
  }
}

export function registerValidate(program: Command): void {
  addProbeOptions(
    program
      .command('validate')
      .description('measure the namespace before and after exempting ports (both directions of their role); PASS leaves the change pending for confirm')
      .requiredOption('--port <port...>', 'PORT, PROTO/PORT or PROTO/LO-HI (udp/5000, tcp/80, udp/60000-60100)')
      .addOption(protoOption())
      .addOption(roleOption())
      .addOption(durationFlag('length of each of the two windows', '5s', { minMs: 500, maxMs: 600_000 }))
      .addOption(confirmWithinOption('after the windows, roll back unless confirmed within this time', '60s'))
      .addOption(stateDirOption())
      .option('--no-census', 'skip the census after each window (no entry counts per port)')
      .addOption(censusMethodOption())
      .addOption(jsonOption('ctop.validation/v2')),
  ).action((f: ProbeSettings & { port: string[]; proto?: L4; role: RoleChoice; duration: number; confirmWithin: number; stateDir: string; census: boolean; occupancy: 'auto' | 'ctnetlink'; json?: boolean }) =>
    runValidate({
      ...probeSettings(f),
      specs: parsePortSpecs(f.port, f.proto, 'validate'),
      role: f.role,
      durationMs: f.duration,
      confirmWithinMs: f.confirmWithin,
      stateDir: f.stateDir,
      census: f.census,
      occupancy: f.occupancy,
      json: f.json === true,
    }),
  );
}
