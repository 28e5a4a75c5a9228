/**
 * `ctop notrack apply|confirm|revert`: exempt ports and port ranges from
 * tracking in a table ctop owns (inet ctop_notrack), for both directions of
 * the traffic's role, guarded like iptables-apply (src/notrack/guard.ts):
 *   --role auto (the default) measures a window first and takes the role
 *   the kernel showed for each port (src/advise/roles.ts);
 *   dry run by default (prints the script, checks it with `nft -c`);
 *   --yes: backup, pending record, detached rollback watchdog, then one
 *   atomic `nft -f`; unless `ctop notrack confirm` comes within
 *   --confirm-within, the watchdog restores the backup.
 */
import type { Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { nftScript, portText, type L4, type RoleChoice } from '../advise/rules.js';
import { notrackFlags, untrackedAcceptsFor } from '../advise/notrack.js';
import { describeTarget, resolveTargets, type ResolvedTarget } from '../advise/targets.js';
import { readRuleset } from '../source/ruleset.js';
import { checkPrivileges } from '../preflight.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { KernelSource } from '../source/kernelSource.js';
import { thisHost } from '../source/host.js';
import { LiveWindows } from '../source/windows.js';
import { forNamespace } from '../model/snapshot.js';
import { formatMs } from '../util/duration.js';
import { onTermination } from '../util/signals.js';
import { deleteOwnRules, nftCheck } from '../notrack/nft.js';
import { awaitOutcome, confirmChange, revertChange, startGuardedChange, target, type Target } from '../notrack/guard.js';
import { parsePortSpecs, type PortSpec } from '../notrack/portSpec.js';
import { cleanText } from '../util/sanitize.js';
import { confirmWithinOption, durationFlag, netnsOption, protoOption, roleOption, stateDirOption } from './options.js';

export interface ApplyOptions {
  specs: PortSpec[];
  role: RoleChoice;
  /** the window --role auto measures */
  durationMs: number;
  netns?: string;
  yes: boolean;
  force: boolean;
  confirmWithinMs: number;
  stateDir: string;
}

/**
 * Targets with their roles: forced ones as given; with auto, a window is
 * measured in the target namespace and each spec takes the role(s) of its
 * ports' new entries. No entries, no role: the operator must say.
 */
async function targetsWithRoles(t: Target, specs: PortSpec[], role: RoleChoice, durationMs: number, what: string): Promise<ResolvedTarget[]> {
  if (role !== 'auto') return resolveTargets(specs, role, null);
  checkPrivileges();
  const source = new KernelSource({ tier: 'auto', ...(t.netnsPath ? { netns: t.netnsPath } : {}), maxPorts: 8192, maxTuples: 1024, maxDropTuples: 1024, rescanMs: 60_000 });
  const live = new LiveWindows(source, thisHost(), { top: 0, tuples: false });
  const stopListening = onTermination(() => source.close(), ['SIGTERM', 'SIGHUP', 'SIGINT']);
  try {
    await live.start();
    process.stderr.write(`ctop: measuring ${formatMs(durationMs)} in ${t.label} to infer the role (--role auto)\n`);
    const snap = forNamespace(await live.measure(durationMs), t.inode);
    const out = resolveTargets(specs, 'auto', snap.ports);
    for (const x of out) {
      if (!x.evidence.inferred) {
        throw new CtopError(
          `${what}: cannot infer the role of ${portText(x)}: ${x.evidence.evidence}`,
          `run it while the traffic flows (a longer --duration), or name the role: --role server|client|local|forward`,
          ExitCode.failure,
        );
      }
    }
    return out;
  } finally {
    source.close();
    stopListening();
  }
}

async function runApply(o: ApplyOptions): Promise<number> {
  const t = target(o.netns);
  // Check the script's syntax before measuring: a bad range fails fast.
  nftCheck(nftScript(resolveTargets(o.specs, 'server', null)), t.netnsPath);
  const targets = await targetsWithRoles(t, o.specs, o.role, o.durationMs, 'notrack apply');
  for (const x of targets) process.stderr.write(`ctop: ${describeTarget(x)}\n`);
  const script = nftScript(targets);
  const rs = readRuleset(t.netnsPath);
  const factErrors: string[] = [];
  const host = readHostFacts(factErrors);
  const facts = readNetnsFacts(t.netnsPath, factErrors);
  const blockers: string[] = [];
  for (const p of targets) {
    for (const f of notrackFlags(p, { users: rs.users, chains: rs.chains, helpers: host.helpers, helperAutoAssign: facts.helperAutoAssign })) {
      process.stderr.write(`ctop: ${portText(p)}: ${f.severity}: ${cleanText(`${f.reason}${f.rule ? ` [${f.rule}]` : ''}`, Infinity)}\n`);
      if (f.severity === 'unsafe') blockers.push(portText(p));
    }
  }
  const accepts = targets.flatMap((p) => untrackedAcceptsFor(p, rs.chains));
  for (const a of accepts) process.stderr.write(`ctop: needed in your own chain (ctop does not edit it): ${cleanText(a.command, Infinity)}\n`);
  nftCheck(script, t.netnsPath);
  if (!o.yes) {
    process.stdout.write(script);
    process.stderr.write(`ctop: dry run: the script above passed \`nft -c\` in ${t.label}; add --yes to apply it (it rolls back unless confirmed within ${formatMs(o.confirmWithinMs)})\n`);
    return ExitCode.ok;
  }
  if (blockers.length > 0 && !o.force) {
    throw new CtopError(
      `notrack apply: unsafe to exempt ${[...new Set(blockers)].join(', ')} (reasons above)`,
      'fix the rules that depend on tracking these ports, or pass --force if you have checked',
      ExitCode.failure,
    );
  }
  const change = await startGuardedChange(t, o.stateDir, o.confirmWithinMs, script);
  process.stderr.write(
    `ctop: applied in ${t.label} (backup ${change.paths.backup}, watchdog pid ${change.dogPid}); confirm within ${formatMs(o.confirmWithinMs)} with \`ctop notrack confirm${o.netns ? ` --netns ${o.netns}` : ''}\` or it rolls back\n`,
  );
  // Wait for the outcome so the operator sees it; killing ctop here changes nothing.
  if ((await awaitOutcome(t, o.stateDir, change, o.confirmWithinMs)) === 'confirmed') {
    process.stderr.write('ctop: confirmed; the rules stay\n');
    return ExitCode.ok;
  }
  throw new CtopError(`notrack apply: not confirmed within ${formatMs(o.confirmWithinMs)}; rolled back (ctop's table is as before, checked in the kernel)`, `see ${change.paths.log}; apply again and run \`ctop notrack confirm\` in time`, ExitCode.failure);
}

async function runConfirm(o: { netns?: string; stateDir: string }): Promise<void> {
  const t = target(o.netns);
  await confirmChange(t, o.stateDir);
  process.stderr.write(`ctop: confirmed in ${t.label}; the rules stay until \`ctop notrack revert\`\n`);
}

async function runRevert(o: { netns?: string; stateDir: string; specs: PortSpec[] }): Promise<void> {
  const t = target(o.netns);
  if (o.specs.length > 0) {
    // Only these ports' rules; the rest of ctop's table (and the backup) stay.
    const removed = deleteOwnRules(o.specs.map(portText), t.netnsPath);
    const missing = o.specs.map(portText).filter((p) => !removed.includes(p));
    if (missing.length > 0) {
      throw new CtopError(`notrack revert: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not exempted in ctop's table in ${t.label}`, 'name ports exactly as `nft list table inet ctop_notrack` shows them in its comments, or revert everything without ports', ExitCode.failure);
    }
    process.stderr.write(`ctop: reverted ${removed.join(', ')} in ${t.label}; the other rules stay\n`);
    return;
  }
  const r = await revertChange(t, o.stateDir);
  process.stderr.write(`ctop: reverted in ${t.label}: ${r.restoredTable ? "ctop's table restored from the backup" : "ctop's table removed"}${r.cancelledPending ? ' (a pending apply was cancelled)' : ''}\n`);
}

export function registerNotrack(program: Command): void {
  const nt = program.command('notrack').description('exempt ports from conntrack in a table ctop owns, with automatic rollback');
  const common = (c: Command) =>
    c
      .addOption(netnsOption('act in this network namespace'))
      .addOption(stateDirOption('where backups and the pending record live (created 0700; refused when another user owns it or can write it)'));
  common(
    nt
      .command('apply')
      .argument('<port...>', 'PORT, PROTO/PORT or PROTO/LO-HI (tcp/80, udp/5000, udp/60000-60100)')
      .description('dry run by default; --yes applies and waits for `ctop notrack confirm`')
      .addOption(protoOption())
      .addOption(roleOption())
      .addOption(durationFlag('with --role auto: how long to measure', '3s', { minMs: 200, maxMs: 600_000 }))
      .option('--yes', 'apply (default: dry run)')
      .option('--force', 'apply even where the safety check found something that depends on tracking')
      .addOption(confirmWithinOption('roll back unless confirmed within this time', '30s')),
  ).action(async (ports: string[], f: { netns?: string; stateDir: string; proto?: L4; role: RoleChoice; duration: number; yes?: boolean; force?: boolean; confirmWithin: number }) => {
    const code = await runApply({
      specs: parsePortSpecs(ports, f.proto, 'notrack apply'),
      role: f.role,
      durationMs: f.duration,
      ...(f.netns !== undefined ? { netns: f.netns } : {}),
      yes: f.yes === true,
      force: f.force === true,
      confirmWithinMs: f.confirmWithin,
      stateDir: f.stateDir,
    });
    process.exitCode = code;
  });
  common(nt.command('confirm').description('keep the rules of a pending apply')).action((f: { netns?: string; stateDir: string }) => runConfirm(f));
  common(
    nt
      .command('revert')
      .argument('[port...]', 'only these (PROTO/PORT or PROTO/LO-HI as applied); none: everything')
      .addOption(protoOption())
      .description("restore ctop's table as it was before the last apply (removing it if it did not exist), or remove the named ports' rules"),
  ).action((ports: string[], f: { netns?: string; stateDir: string; proto?: L4 }) =>
    runRevert({ ...f, specs: ports.length > 0 ? parsePortSpecs(ports, f.proto, 'notrack revert') : [] }),
  );
}
