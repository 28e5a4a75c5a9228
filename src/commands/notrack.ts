/**
 * `ctop notrack apply|confirm|revert`: exempt ports from tracking in a table
 * ctop owns (inet ctop_notrack), guarded like iptables-apply:
 *   dry run by default (prints the script, checks it with `nft -c`);
 *   --yes: backup of ctop's table, pending record, detached rollback
 *   watchdog, then one atomic `nft -f`; unless `ctop notrack confirm` comes
 *   within --confirm-within, the watchdog restores the backup, also when the
 *   applying ctop was killed.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import { nftScript, type NotrackTarget, type Role } from '../advise/rules.js';
import { type L4 } from '../model/conntrack.js';
import { notrackFlags, untrackedAcceptsFor } from '../advise/notrack.js';
import { readRuleset } from '../source/ruleset.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { hostNetnsInode, resolveNetns } from '../source/netnsScan.js';
import { formatMs, parseDurationMs } from '../util/duration.js';
import { sleepMs } from '../util/signals.js';
import { listOwnTable, nftCheck, nftLoad, restoreScript } from '../notrack/nft.js';
import { claim, DEFAULT_STATE_DIR, ensureDir, readJson, statePaths, writeDurable, type Backup, type Pending, type StatePaths } from '../notrack/state.js';
import { existsSync, unlinkSync } from 'node:fs';

export interface Target {
  netnsPath?: string;
  inode: number;
  label: string;
}

export function target(netns: string | undefined): Target {
  if (netns === undefined) return { inode: hostNetnsInode(), label: 'the host namespace' };
  const ref = resolveNetns(netns);
  return { netnsPath: ref.path, inode: ref.inode, label: `namespace ${ref.name}` };
}

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

/** How long the watchdog may take to start (Node start-up on a busy host). */
const WATCHDOG_START_MS = 10_000;
const WATCHDOG: string = fileURLToPath(new URL('../notrack/watchdog.js', import.meta.url));

/**
 * The guarded change: 1. backup of ctop's table, 2. pending record, 3. the
 * detached watchdog, 4. the change. The watchdog exists before the ruleset
 * changes, so no kill of ours can strand an unconfirmed change.
 */
export async function startGuardedChange(t: Target, stateDir: string, confirmWithinMs: number, script: string): Promise<{ paths: StatePaths; dogPid: number | undefined; deadlineMs: number }> {
  ensureDir(stateDir);
  const paths = statePaths(stateDir, t.inode);
  if (existsSync(paths.pending) || existsSync(paths.rollingBack)) {
    throw new CtopError(`an earlier change in ${t.label} is still waiting for confirmation or rollback`, '`ctop notrack confirm` keeps it, `ctop notrack revert` undoes it', ExitCode.failure);
  }
  for (const f of [paths.confirmed]) if (existsSync(f)) unlinkSync(f);
  const backup: Backup = { table: listOwnTable(t.netnsPath), takenAt: new Date().toISOString() };
  writeDurable(paths.backup, `${JSON.stringify(backup, null, 2)}\n`);
  const pending: Pending = {
    ...(t.netnsPath ? { netnsPath: t.netnsPath } : {}),
    inode: t.inode,
    deadlineMs: Date.now() + confirmWithinMs,
    backupFile: paths.backup,
    script,
    appliedBy: process.pid,
  };
  writeDurable(paths.pending, `${JSON.stringify(pending, null, 2)}\n`);
  if (existsSync(paths.armed)) unlinkSync(paths.armed);
  const dog = spawn(process.execPath, [WATCHDOG, paths.pending], { detached: true, stdio: 'ignore' });
  dog.unref();
  // No change before the watchdog says it is watching: a change nobody
  // would roll back is exactly what this guard exists to prevent.
  const armedBy = Date.now() + WATCHDOG_START_MS;
  while (!existsSync(paths.armed) && Date.now() < armedBy) await sleepMs(20);
  if (!existsSync(paths.armed)) {
    if (claim(paths.pending, paths.confirmed)) unlinkSync(paths.confirmed);
    throw new CtopError(`the rollback watchdog did not start within ${WATCHDOG_START_MS / 1000} s; nothing was changed`, `check that ${WATCHDOG} runs with ${process.execPath}`, ExitCode.failure);
  }
  try {
    nftLoad(script, t.netnsPath);
  } catch (e) {
    // Nothing changed; take the record back so the watchdog stands down.
    if (claim(paths.pending, paths.confirmed)) unlinkSync(paths.confirmed);
    throw e;
  }
  return { paths, dogPid: dog.pid, deadlineMs: pending.deadlineMs };
}

/** Undo a guarded change now (validation failed): claim the record, restore the backup. */
export function rollBackNow(t: Target, paths: StatePaths): void {
  if (!claim(paths.pending, paths.rollingBack)) return;
  const backup = readJson<Backup>(paths.backup);
  nftLoad(restoreScript(backup?.table ?? null), t.netnsPath);
  unlinkSync(paths.rollingBack);
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
      process.stderr.write(`ctop: ${p.proto}/${p.port}: ${f.severity}: ${f.reason}${f.rule ? ` [${f.rule}]` : ''}\n`);
      if (f.severity === 'unsafe') blockers.push(`${p.proto}/${p.port}`);
    }
  }
  const accepts = o.ports.flatMap((p) => untrackedAcceptsFor(p, rs.chains));
  for (const a of accepts) process.stderr.write(`ctop: needed in your own chain (ctop does not edit it): ${a.command}\n`);
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
  const { paths, dogPid, deadlineMs } = await startGuardedChange(t, o.stateDir, o.confirmWithinMs, script);
  process.stderr.write(
    `ctop: applied in ${t.label} (backup ${paths.backup}, watchdog pid ${dogPid}); confirm within ${formatMs(o.confirmWithinMs)} with \`ctop notrack confirm${o.netns ? ` --netns ${o.netns}` : ''}\` or it rolls back\n`,
  );
  // Wait for the outcome so the operator sees it; killing ctop here changes nothing.
  while (Date.now() < deadlineMs + 10_000) {
    if (existsSync(paths.confirmed)) {
      process.stderr.write('ctop: confirmed; the rules stay\n');
      return ExitCode.ok;
    }
    if (!existsSync(paths.pending) && !existsSync(paths.rollingBack)) break;
    await sleepMs(100);
  }
  if (existsSync(paths.confirmed)) return ExitCode.ok;
  if (existsSync(paths.rollingBack)) {
    throw new CtopError('notrack apply: not confirmed in time, and the rollback failed', `see ${paths.log}; \`ctop notrack revert\` restores ctop's table`, ExitCode.failure);
  }
  throw new CtopError(`notrack apply: not confirmed within ${formatMs(o.confirmWithinMs)}; rolled back`, `see ${paths.log}; apply again and run \`ctop notrack confirm\` in time`, ExitCode.failure);
}

export function runConfirm(o: { netns?: string; stateDir: string }): void {
  const t = target(o.netns);
  const paths = statePaths(o.stateDir, t.inode);
  if (!claim(paths.pending, paths.confirmed)) {
    throw new CtopError(`notrack confirm: nothing is waiting for confirmation in ${t.label}`, 'it may have rolled back already (see the log in the state dir); apply again', ExitCode.failure);
  }
  process.stderr.write(`ctop: confirmed in ${t.label}; the rules stay until \`ctop notrack revert\`\n`);
}

export function runRevert(o: { netns?: string; stateDir: string }): void {
  const t = target(o.netns);
  const paths = statePaths(o.stateDir, t.inode);
  // Stand the watchdog down first, then restore what the last apply replaced.
  const hadPending = claim(paths.pending, paths.confirmed) || claim(paths.rollingBack, paths.confirmed);
  const backup = readJson<Backup>(paths.backup);
  nftLoad(restoreScript(backup?.table ?? null), t.netnsPath);
  for (const f of [paths.confirmed, paths.backup]) if (existsSync(f)) unlinkSync(f);
  process.stderr.write(`ctop: reverted in ${t.label}: ${backup?.table ? "ctop's table restored from the backup" : "ctop's table removed"}${hadPending ? ' (a pending apply was cancelled)' : ''}\n`);
}

export function registerNotrack(program: Command): void {
  const nt = program.command('notrack').description('exempt ports from conntrack in a table ctop owns, with automatic rollback');
  const common = (c: Command) =>
    c
      .option('--netns <name|path>', 'act in this network namespace (an `ip netns` name or /proc/PID/ns/net)')
      .option('--state-dir <dir>', 'where backups and the pending record live', DEFAULT_STATE_DIR);
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
