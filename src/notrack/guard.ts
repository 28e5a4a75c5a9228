/**
 * The guarded change to ctop's own nft table, like iptables-apply: a backup
 * of the table, a pending record, a detached rollback watchdog, then one
 * atomic `nft -f`. Unless `ctop notrack confirm` claims the record before the
 * deadline, the watchdog restores the backup, also when the applying ctop
 * was killed. Used by `notrack apply`, `validate` and the live screen.
 */
import { spawn } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtopError, ExitCode } from '../errors.js';
import { hostNetnsInode, resolveNetns } from '../source/netnsScan.js';
import { sleepMs } from '../util/signals.js';
import { listOwnTable, nftLoad, restoreScript } from './nft.js';
import { claim, ensureDir, readJson, statePaths, writeDurable, type Backup, type Pending, type StatePaths } from './state.js';

/** The namespace a change is made in. */
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

/** How long the watchdog may take to start (Node start-up on a busy host). */
const WATCHDOG_START_MS = 10_000;
const WATCHDOG: string = fileURLToPath(new URL('./watchdog.js', import.meta.url));

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


/** Keep a pending change: claim the record before the watchdog does. False when nothing was pending. */
export function confirmChange(paths: StatePaths): boolean {
  return claim(paths.pending, paths.confirmed);
}

/** Restore what the last apply replaced (removing ctop's table if it did not exist), standing a pending watchdog down first. */
export function revertChange(t: Target, paths: StatePaths): { hadPending: boolean; restored: boolean } {
  const hadPending = claim(paths.pending, paths.confirmed) || claim(paths.rollingBack, paths.confirmed);
  const backup = readJson<Backup>(paths.backup);
  nftLoad(restoreScript(backup?.table ?? null), t.netnsPath);
  for (const f of [paths.confirmed, paths.backup]) if (existsSync(f)) unlinkSync(f);
  return { hadPending, restored: Boolean(backup?.table) };
}
