/**
 * The guarded change to ctop's table, like iptables-apply: backup, pending
 * record, detached rollback watchdog, then one atomic `nft -f`; confirm keeps
 * it, revert restores the backup. Everything root loads or trusts goes
 * through src/notrack/state.ts (a directory only root can write, files
 * without link-following, a checksummed backup) and one lock per namespace;
 * the target namespace is held by a descriptor for the command's life; what
 * the operator is told about a rollback is what the kernel's ruleset shows.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CtopError, ExitCode } from '../errors.js';
import { hostNetnsInode, resolveNetns } from '../source/netnsScan.js';
import { formatMs } from '../util/duration.js';
import { sleepMs } from '../util/signals.js';
import { listOwnTable, nftLoad, ownTableIs, restoreScript } from './nft.js';
import { pinNetns } from './netnsPin.js';
import {
  acquireLock,
  armedPath,
  claim,
  createStateFileExclusive,
  makeBackup,
  monotonicMs,
  newNonce,
  openStateDir,
  readStateJson,
  readVerifiedBackup,
  removeStateFile,
  statePaths,
  writeStateFile,
  type Pending,
  type StatePaths,
} from './state.js';

export interface Target {
  /** What nsenter enters: the descriptor ctop holds (/proc/PID/fd/N); undefined: ctop's own namespace. */
  netnsPath?: string;
  inode: number;
  label: string;
  /** The --netns the operator gave, for commands ctop suggests. */
  netnsArg?: string;
}

/** The target namespace, held open by this process from here on. */
export function target(netns: string | undefined): Target {
  if (netns === undefined) return { inode: hostNetnsInode(), label: 'the host namespace' };
  const ref = resolveNetns(netns);
  const pin = pinNetns(ref.path, ref.inode);
  return { netnsPath: pin.path, inode: ref.inode, label: `namespace ${ref.name}`, netnsArg: netns };
}

/** How long the watchdog may take to start (Node start-up on a busy host). */
const WATCHDOG_START_MS = 10_000;
const WATCHDOG: string = fileURLToPath(new URL('./watchdog.js', import.meta.url));
/** How long confirm and revert wait for a namespace's lock (an apply holds it while its watchdog starts). */
const LOCK_WAIT_MS = 15_000;

export interface GuardedChange {
  paths: StatePaths;
  dogPid: number | undefined;
  /** Resolves when the watchdog process exits. */
  dogExited: Promise<void>;
  deadlineMonotonicMs: number;
  backupSha256: string;
}

/**
 * The guarded change: 1. backup of ctop's table, 2. pending record, 3. the
 * detached watchdog, 4. the change, all under the namespace's lock (a second
 * apply refuses). The watchdog exists before the ruleset changes, so no kill
 * of ours can strand an unconfirmed change.
 */
export async function startGuardedChange(t: Target, stateDir: string, confirmWithinMs: number, script: string): Promise<GuardedChange> {
  openStateDir(stateDir);
  const paths = statePaths(stateDir, t.inode);
  const release = await acquireLock(paths.lock, t.label, 0);
  try {
    if (existsSync(paths.pending) || existsSync(paths.rollingBack)) {
      throw new CtopError(`an earlier change in ${t.label} is still waiting for confirmation or rollback`, '`ctop notrack confirm` keeps it, `ctop notrack revert` undoes it', ExitCode.failure);
    }
    removeStateFile(paths.confirmed);
    const backup = makeBackup(listOwnTable(t.netnsPath));
    writeStateFile(paths.backup, `${JSON.stringify(backup, null, 2)}\n`);
    const nonce = newNonce();
    const deadlineMonotonicMs = monotonicMs() + confirmWithinMs;
    const pending: Pending = {
      ...(t.netnsPath ? { netnsPath: t.netnsPath } : {}),
      inode: t.inode,
      nonce,
      deadlineMonotonicMs,
      deadlineIso: new Date(Date.now() + confirmWithinMs).toISOString(),
      backupFile: paths.backup,
      backupSha256: backup.sha256,
      script,
      appliedBy: process.pid,
    };
    if (!createStateFileExclusive(paths.pending, `${JSON.stringify(pending, null, 2)}\n`)) {
      throw new CtopError(`an earlier change in ${t.label} is still waiting for confirmation or rollback`, '`ctop notrack confirm` keeps it, `ctop notrack revert` undoes it', ExitCode.failure);
    }
    const dog = spawn(process.execPath, [WATCHDOG, paths.pending, nonce], { detached: true, stdio: 'ignore' });
    const dogExited = new Promise<void>((r) => {
      dog.on('exit', () => r());
      dog.on('error', () => r());
    });
    dog.unref();
    // No change before the watchdog says it is watching: a change nobody
    // would roll back is exactly what this guard exists to prevent.
    const armed = armedPath(paths, nonce);
    const armedBy = monotonicMs() + WATCHDOG_START_MS;
    let exited = false;
    void dogExited.then(() => (exited = true));
    while (!existsSync(armed) && !exited && monotonicMs() < armedBy) await sleepMs(20);
    if (!existsSync(armed)) {
      if (claim(paths.pending, paths.confirmed)) removeStateFile(paths.confirmed);
      throw new CtopError(
        `the rollback watchdog did not start${exited ? '' : ` within ${WATCHDOG_START_MS / 1000} s`}; nothing was changed`,
        `see ${paths.log}; check that ${WATCHDOG} runs with ${process.execPath}`,
        ExitCode.failure,
      );
    }
    try {
      nftLoad(script, t.netnsPath);
    } catch (e) {
      // Nothing changed; take the record back so the watchdog stands down.
      if (claim(paths.pending, paths.confirmed)) removeStateFile(paths.confirmed);
      throw e;
    }
    return { paths, dogPid: dog.pid, dogExited, deadlineMonotonicMs, backupSha256: backup.sha256 };
  } finally {
    release();
  }
}

/** The command an operator runs by hand to restore ctop's table. */
function revertCommand(t: Target, stateDir: string): string {
  return `ctop notrack revert${t.netnsArg !== undefined ? ` --netns ${t.netnsArg}` : ''} --state-dir ${stateDir}`;
}

function notRolledBack(t: Target, stateDir: string, why: string): CtopError {
  return new CtopError(
    `notrack apply: NOT rolled back: ctop's table in ${t.label} still holds the change (${why})`,
    `restore it now: \`${revertCommand(t, stateDir)}\`; if the backup is unusable, remove ctop's table: nft delete table inet ctop_notrack${t.netnsArg !== undefined ? ` (inside the namespace: ip netns exec NAME or nsenter --net=PATH)` : ''}`,
    ExitCode.failure,
  );
}

/**
 * Waits for the change's outcome. Confirmed: ok. Otherwise "rolled back" is
 * claimed only when ctop's table in the kernel is as the backup has it;
 * anything else (the watchdog killed, its record removed, the restore
 * refused) is a loud error naming the manual command.
 */
export async function awaitOutcome(t: Target, stateDir: string, g: GuardedChange, confirmWithinMs: number): Promise<'confirmed' | 'rolled back'> {
  let exited = false;
  void g.dogExited.then(() => (exited = true));
  const { paths } = g;
  while (monotonicMs() < g.deadlineMonotonicMs + 10_000) {
    if (existsSync(paths.confirmed)) return 'confirmed';
    if (!existsSync(paths.pending) && !existsSync(paths.rollingBack)) break;
    if (exited) break;
    await sleepMs(100);
  }
  if (existsSync(paths.confirmed)) return 'confirmed';
  let backup;
  try {
    backup = readVerifiedBackup(paths.backup, g.backupSha256);
  } catch (e) {
    throw notRolledBack(t, stateDir, e instanceof Error ? e.message : String(e));
  }
  if (backup && ownTableIs(backup.table, t.netnsPath) && !existsSync(paths.rollingBack) && !existsSync(paths.pending)) return 'rolled back';
  const why = existsSync(paths.pending)
    ? `the watchdog exited without rolling back, not confirmed within ${formatMs(confirmWithinMs)}`
    : existsSync(paths.rollingBack)
      ? `the watchdog's restore failed; see ${paths.log}`
      : `its record was removed; see ${paths.log}`;
  throw notRolledBack(t, stateDir, why);
}

/** Keeps a pending change: claims its record before the watchdog does. */
export async function confirmChange(t: Target, stateDir: string): Promise<void> {
  openStateDir(stateDir);
  const paths = statePaths(stateDir, t.inode);
  const release = await acquireLock(paths.lock, t.label, LOCK_WAIT_MS);
  try {
    if (!claim(paths.pending, paths.confirmed)) {
      throw new CtopError(`notrack confirm: nothing is waiting for confirmation in ${t.label}`, 'it may have rolled back already (see the log in the state dir); apply again', ExitCode.failure);
    }
  } finally {
    release();
  }
}

/** The checksum the last apply recorded for its backup, from its record (pending, confirmed or rolling back). */
function recordedSha(paths: StatePaths): string | undefined {
  for (const f of [paths.confirmed, paths.pending, paths.rollingBack]) {
    const p = readStateJson<Pending>(f);
    if (p?.backupSha256) return p.backupSha256;
  }
  return undefined;
}

/**
 * Restores ctop's table from the last apply's backup (removing it when there
 * was none), cancelling a pending change first; checks the kernel shows it.
 * Returns whether a pending change was cancelled and whether a table was restored.
 */
export async function revertChange(t: Target, stateDir: string): Promise<{ cancelledPending: boolean; restoredTable: boolean }> {
  openStateDir(stateDir);
  const paths = statePaths(stateDir, t.inode);
  const release = await acquireLock(paths.lock, t.label, LOCK_WAIT_MS);
  try {
    const expected = recordedSha(paths);
    const backup = readVerifiedBackup(paths.backup, expected);
    // Stand the watchdog down, then restore what the last apply replaced.
    const cancelledPending = claim(paths.pending, paths.confirmed) || claim(paths.rollingBack, paths.confirmed);
    const table = backup?.table ?? null;
    nftLoad(restoreScript(table), t.netnsPath);
    if (!ownTableIs(table, t.netnsPath)) {
      throw new CtopError(`notrack revert: nft accepted the restore, but ctop's table in ${t.label} is not as the backup has it`, `look at it: nft list table inet ctop_notrack; remove it by hand: nft delete table inet ctop_notrack`, ExitCode.failure);
    }
    for (const f of [paths.confirmed, paths.backup]) removeStateFile(f);
    return { cancelledPending, restoredTable: table !== null };
  } finally {
    release();
  }
}

/** Undo a guarded change now (validation failed): claim the record, restore the verified backup. */
export function rollBackNow(t: Target, g: Pick<GuardedChange, 'paths' | 'backupSha256'>): void {
  const { paths } = g;
  if (!claim(paths.pending, paths.rollingBack)) return;
  const backup = readVerifiedBackup(paths.backup, g.backupSha256);
  nftLoad(restoreScript(backup?.table ?? null), t.netnsPath);
  removeStateFile(paths.rollingBack);
}
