/**
 * The rollback watchdog: a detached process (its own session, not a child
 * ctop waits for) started before the change is loaded. At the deadline it
 * claims the pending record and restores ctop's table from the backup, unless
 * `ctop notrack confirm` claimed the record first. Because it runs apart from
 * the applying ctop, a SIGKILLed ctop still gets rolled back.
 *
 * It acts only on what its own apply set up: the record carrying its nonce
 * (claimed under the namespace's lock), the namespace held by a descriptor
 * opened at start (its inode checked), the backup whose checksum the apply
 * recorded, and a CLOCK_MONOTONIC deadline no wall-clock step moves.
 *
 * Usage: node dist/notrack/watchdog.js PENDING_FILE NONCE
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  acquireLock,
  appendStateLine,
  armedPath,
  claim,
  createStateFileExclusive,
  monotonicMs,
  readStateJson,
  readVerifiedBackup,
  removeStateFile,
  type Pending,
  statePaths,
  type StatePaths,
} from './state.js';
import { nftLoad, restoreScript } from './nft.js';
import { pinNetns } from './netnsPin.js';

const POLL_MS = 200;
/** How long the claim may wait for the namespace's lock (an apply holds it while its own watchdog starts). */
const LOCK_WAIT_MS = 60_000;

function log(file: string, line: string): void {
  try {
    appendStateLine(file, `${new Date().toISOString()} watchdog ${process.pid}: ${line}\n`);
  } catch {
    /* the log is a courtesy */
  }
}

function stillOurs(paths: StatePaths, nonce: string): boolean {
  try {
    return readStateJson<Pending>(paths.pending)?.nonce === nonce;
  } catch {
    return false;
  }
}

async function main(pendingFile: string, nonce: string): Promise<number> {
  const p = readStateJson<Pending>(pendingFile);
  if (!p || p.nonce !== nonce) return 0; // confirmed or reverted before we started
  const paths = statePaths(dirname(pendingFile), p.inode);
  if (paths.pending !== pendingFile) throw new Error(`${pendingFile} is not the pending record of namespace ${p.inode}`);
  // Hold the namespace for our whole life; the apply is alive (waiting for us) while we open it.
  const ns = p.netnsPath !== undefined ? pinNetns(p.netnsPath, p.inode) : undefined;
  // Tell the applying ctop we are watching: it loads the change only then.
  const armed = armedPath(paths, nonce);
  if (!createStateFileExclusive(armed, `${process.pid}\n`)) throw new Error(`${armed} exists already`);
  process.on('exit', () => removeStateFile(armed));
  log(paths.log, `watching namespace ${p.inode}; rollback at ${p.deadlineIso}`);
  while (monotonicMs() < p.deadlineMonotonicMs) {
    if (!stillOurs(paths, nonce)) {
      log(paths.log, 'confirmed or reverted; nothing to do');
      return 0;
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(1, p.deadlineMonotonicMs - monotonicMs()))));
  }
  const release = await acquireLock(paths.lock, `namespace ${p.inode}`, LOCK_WAIT_MS);
  let claimed: boolean;
  try {
    claimed = stillOurs(paths, nonce) && claim(paths.pending, paths.rollingBack);
  } finally {
    release();
  }
  if (!claimed) {
    log(paths.log, 'confirmed at the deadline; nothing to do');
    return 0;
  }
  try {
    const backup = readVerifiedBackup(p.backupFile, p.backupSha256);
    if (!backup) throw new Error(`backup ${p.backupFile} is missing`);
    nftLoad(restoreScript(backup.table), ns?.path);
    log(paths.log, `not confirmed in time: restored ctop's table from ${p.backupFile}`);
    removeStateFile(paths.rollingBack);
    return 0;
  } catch (e) {
    // Keep .rollingback.json: the applying ctop reports it, `ctop notrack revert` finishes the job.
    log(paths.log, `ROLLBACK FAILED: ${e instanceof Error ? e.message : String(e)}; run \`ctop notrack revert\``);
    return 1;
  } finally {
    if (existsSync(paths.rollingBack)) log(paths.log, `${paths.rollingBack} kept`);
  }
}

const [file, nonce] = process.argv.slice(2);
if (!file || !nonce) {
  process.stderr.write('usage: watchdog.js PENDING_FILE NONCE\n');
  process.exitCode = 2;
} else {
  main(file, nonce).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      log(file.replace(/\.pending\.json$/, '.log'), `crashed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
