/**
 * `ctop notrack apply|confirm|revert`: exempt ports from tracking in a table
 * ctop owns (inet ctop_notrack), guarded like iptables-apply:
 *   dry run by default (prints the script, checks it with `nft -c`);
 *   --yes: backup of ctop's table, pending record, detached rollback
 *   watchdog, then one atomic `nft -f`; unless `ctop notrack confirm` comes
 *   within --confirm-within, the watchdog restores the backup, also when the
 *   applying ctop was killed.
 */
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { nftScript, type NotrackTarget, type Role } from '../advise/rules.js';
import { type L4 } from '../model/conntrack.js';
import { notrackFlags, untrackedAcceptsFor } from '../advise/notrack.js';
import { readRuleset } from '../source/ruleset.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { formatMs, parseDurationMs } from '../util/duration.js';
import { nftCheck } from '../notrack/nft.js';
import { awaitOutcome, confirmChange, revertChange, startGuardedChange, target } from '../notrack/guard.js';
import { DEFAULT_STATE_DIR } from '../notrack/state.js';
import { cleanText } from '../util/sanitize.js';

/** "5000", "udp/5000", "tcp/80": a bare port takes --proto. */
export function parsePortSpecs(specs: string[], proto: L4, role: Role): NotrackTarget[] {
  if (specs.length === 0) throw new CtopError('notrack apply: no port given', 'name ports: `ctop notrack apply 5000` or `ctop notrack apply udp/5000 tcp/80`', ExitCode.usage);
  const seen = new Set<string>();
  const out: NotrackTarget[] = [];
  for (const s of specs) {
    const m = /^(?:(tcp|udp)\/)?(\d{1,5})$/.exec(s);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port < 1 || port > 65535) {
      throw new CtopError(`notrack apply: '${s}' is not a port`, 'write PORT (1-65535) or PROTO/PORT with PROTO tcp or udp, e.g. udp/5000', ExitCode.usage);
    }
    const t: NotrackTarget = { proto: (m[1] as L4 | undefined) ?? proto, port, role };
    const key = `${t.proto}/${t.port}`;
    if (!seen.has(key)) out.push(t);
    seen.add(key);
  }
  return out;
}

export interface ApplyOptions {
  ports: NotrackTarget[];
  netns?: string;
  yes: boolean;
  force: boolean;
  confirmWithinMs: number;
  stateDir: string;
}

export async function runApply(o: ApplyOptions): Promise<number> {
  const t = target(o.netns);
  const script = nftScript(o.ports);
  const rs = readRuleset(t.netnsPath);
  const factErrors: string[] = [];
  const host = readHostFacts(factErrors);
  const facts = readNetnsFacts(t.netnsPath, factErrors);
  const blockers: string[] = [];
  for (const p of o.ports) {
    for (const f of notrackFlags(p, { users: rs.users, chains: rs.chains, helpers: host.helpers, helperAutoAssign: facts.helperAutoAssign })) {
      process.stderr.write(`ctop: ${p.proto}/${p.port}: ${f.severity}: ${cleanText(`${f.reason}${f.rule ? ` [${f.rule}]` : ''}`, Infinity)}\n`);
      if (f.severity === 'unsafe') blockers.push(`${p.proto}/${p.port}`);
    }
  }
  const accepts = o.ports.flatMap((p) => untrackedAcceptsFor(p, rs.chains));
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

export async function runConfirm(o: { netns?: string; stateDir: string }): Promise<void> {
  const t = target(o.netns);
  await confirmChange(t, o.stateDir);
  process.stderr.write(`ctop: confirmed in ${t.label}; the rules stay until \`ctop notrack revert\`\n`);
}

export async function runRevert(o: { netns?: string; stateDir: string }): Promise<void> {
  const t = target(o.netns);
  const r = await revertChange(t, o.stateDir);
  process.stderr.write(`ctop: reverted in ${t.label}: ${r.restoredTable ? "ctop's table restored from the backup" : "ctop's table removed"}${r.cancelledPending ? ' (a pending apply was cancelled)' : ''}\n`);
}

export function registerNotrack(program: Command): void {
  const nt = program.command('notrack').description('exempt ports from conntrack in a table ctop owns, with automatic rollback');
  const common = (c: Command) =>
    c
      .option('--netns <name|path>', 'act in this network namespace (an `ip netns` name or /proc/PID/ns/net)')
      .option('--state-dir <dir>', 'where backups and the pending record live (created 0700; refused when another user owns it or can write it)', DEFAULT_STATE_DIR);
  common(
    nt
      .command('apply')
      .argument('<port...>', 'PORT or PROTO/PORT (tcp/80, udp/5000)')
      .description('dry run by default; --yes applies and waits for `ctop notrack confirm`')
      .addOption(new Option('--proto <proto>', 'protocol of bare ports').choices(['udp', 'tcp']).default('udp'))
      .addOption(new Option('--role <role>', 'server: local service on PORT; client: remote PORT').choices(['server', 'client']).default('server'))
      .option('--yes', 'apply (default: dry run)')
      .option('--force', 'apply even where the safety check found something that depends on tracking')
      .option('--confirm-within <time>', 'roll back unless confirmed within this time', '30s'),
  ).action(async (ports: string[], f: { netns?: string; stateDir: string; proto: L4; role: Role; yes?: boolean; force?: boolean; confirmWithin: string }) => {
    const code = await runApply({
      ports: parsePortSpecs(ports, f.proto, f.role),
      ...(f.netns !== undefined ? { netns: f.netns } : {}),
      yes: f.yes === true,
      force: f.force === true,
      confirmWithinMs: parseDurationMs(f.confirmWithin, '--confirm-within', 1000, 3_600_000),
      stateDir: f.stateDir,
    });
    process.exitCode = code;
  });
  common(nt.command('confirm').description('keep the rules of a pending apply')).action((f: { netns?: string; stateDir: string }) => runConfirm(f));
  common(nt.command('revert').description("restore ctop's table as it was before the last apply (removing it if it did not exist)")).action(
    (f: { netns?: string; stateDir: string }) => runRevert(f),
  );
}
