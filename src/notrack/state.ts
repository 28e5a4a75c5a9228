/**
 * On-disk state of `ctop notrack`: per target namespace, the backup of
 * ctop's table taken before the last apply and, while an apply waits for
 * confirmation, a pending record the watchdog owns.
 *
 * Root later loads the backup with `nft -f`, so whoever can write the state
 * directory can make root load any ruleset. The directory is therefore
 * created 0700 and refused when another user owns it, others can write it,
 * or it is a symbolic link; files are opened with O_NOFOLLOW and written to a
 * fresh O_EXCL temporary, then renamed into place; the backup carries a
 * SHA-256 that the pending record repeats, checked before it is loaded.
 *
 * Confirmation and rollback race for one atomic rename of the pending file:
 * `confirm` renames it to .confirmed, the watchdog to .rollingback; whoever
 * renames first wins, the other finds it gone. Creating a pending record and
 * the watchdog's claim happen under the namespace's lock, so a record is only
 * ever claimed by the watchdog of the apply that wrote it (its nonce).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as C, fstatSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CtopError, ExitCode } from '../errors.js';
import { isOwnTableListing } from './nft.js';

import { DEFAULT_STATE_DIR } from './stateDir.js';
export { DEFAULT_STATE_DIR };

/** State files are small; a larger one is not ours. */
const MAX_STATE_FILE_BYTES = 8 * 1024 * 1024;

export interface Pending {
  /** Target namespace: a path the watchdog opens once (its inode checked) and then holds. */
  netnsPath?: string;
  inode: number;
  /** Identifies this apply: only its own watchdog claims this record. */
  nonce: string;
  /** Deadline on CLOCK_MONOTONIC (process.hrtime), shared by every process of the host: a wall-clock step cannot move it. */
  deadlineMonotonicMs: number;
  /** The same deadline as wall-clock time, for people reading the file. */
  deadlineIso: string;
  backupFile: string;
  /** SHA-256 of the backup's table text, recorded at apply. */
  backupSha256: string;
  /** The script that was applied (for the record). */
  script: string;
  appliedBy: number;
}

export interface StatePaths {
  dir: string;
  backup: string;
  pending: string;
  confirmed: string;
  rollingBack: string;
  /** One apply/confirm/revert/claim at a time per namespace. */
  lock: string;
  log: string;
}

export function statePaths(dir: string, inode: number): StatePaths {
  const base = join(dir, `notrack-${inode}`);
  return {
    dir,
    backup: `${base}.backup.json`,
    pending: `${base}.pending.json`,
    confirmed: `${base}.confirmed.json`,
    rollingBack: `${base}.rollingback.json`,
    lock: `${base}.lock`,
    log: `${base}.log`,
  };
}

/** Written by the watchdog of one apply once it watches (its pid); the change waits for it. */
export function armedPath(paths: StatePaths, nonce: string): string {
  return paths.pending.replace(/\.pending\.json$/, `.armed-${nonce}`);
}

export function newNonce(): string {
  return randomBytes(8).toString('hex');
}

/** CLOCK_MONOTONIC in ms: the same clock in every process of this host. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function stateDirError(dir: string, why: string): CtopError {
  return new CtopError(
    `state directory ${dir} ${why}`,
    `root loads backups from it with nft -f, so only root may write it: use a directory root owns with mode 0700 (the default ${DEFAULT_STATE_DIR} is created so), or remove it and let ctop create it`,
    ExitCode.failure,
  );
}

/**
 * Creates the state directory 0700 when missing, then refuses it unless it
 * is a real directory (not a link) owned by us and not writable by group or
 * others; each existing ancestor must be ours or root's and, unless sticky
 * (/tmp), not writable by others either, or the directory could be renamed
 * away and replaced between this check and a later open.
 */
export function openStateDir(dir: string): void {
  const abs = resolve(dir);
  const uid = process.getuid?.() ?? 0;
  try {
    mkdirSync(dirname(abs), { recursive: true, mode: 0o755 });
    mkdirSync(abs, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw stateDirError(abs, `cannot be created: ${(e as Error).message}`);
  }
  const st = lstatSync(abs);
  if (st.isSymbolicLink()) throw stateDirError(abs, 'is a symbolic link');
  if (!st.isDirectory()) throw stateDirError(abs, 'is not a directory');
  if (st.uid !== uid) throw stateDirError(abs, `is owned by uid ${st.uid}, not by uid ${uid} (ctop)`);
  if ((st.mode & 0o022) !== 0) throw stateDirError(abs, `is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
  for (let a = dirname(abs); ; a = dirname(a)) {
    const s = lstatSync(a);
    const sticky = (s.mode & 0o1000) !== 0;
    if (s.isSymbolicLink()) throw stateDirError(abs, `lies under ${a}, a symbolic link`);
    if (s.uid !== uid && s.uid !== 0) throw stateDirError(abs, `lies under ${a}, owned by uid ${s.uid}`);
    if ((s.mode & 0o022) !== 0 && !sticky) throw stateDirError(abs, `lies under ${a}, which group or others can write`);
    if (a === dirname(a)) break;
  }
}

/** Opens `path` write-only with `flags` and O_NOFOLLOW (0600 where it creates it), writes all of `text`, fsyncs it when `sync`. */
function writeOpened(path: string, flags: number, text: string, sync = false): void {
  const fd = openSync(path, C.O_WRONLY | C.O_NOFOLLOW | flags, 0o600);
  try {
    const buf = Buffer.from(text);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `op()`: true; false where it fails with `code`, the error that says another process got there first. */
function succeedsUnless(code: 'EEXIST' | 'ENOENT', op: () => void): boolean {
  try {
    op();
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === code) return false;
    throw e;
  }
}

/** A new temporary beside `path`, created O_EXCL|O_NOFOLLOW 0600, written and fsynced. */
function writeTemp(path: string, text: string): string {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  writeOpened(tmp, C.O_CREAT | C.O_EXCL, text, true);
  return tmp;
}

/** Write-then-rename: a crash leaves the old file or the new one, never half of one; a link at `path` is replaced, not followed. */
export function writeStateFile(path: string, text: string): void {
  renameSync(writeTemp(path, text), path);
}

/** Like writeStateFile, but only when `path` does not exist yet (link(2) fails on an existing name): false then. */
export function createStateFileExclusive(path: string, text: string): boolean {
  const tmp = writeTemp(path, text);
  try {
    return succeedsUnless('EEXIST', () => linkSync(tmp, path));
  } finally {
    unlinkSync(tmp);
  }
}

/** Appends one line without following a link at `path`. */
export function appendStateLine(path: string, line: string): void {
  writeOpened(path, C.O_APPEND | C.O_CREAT, line);
}

/** A state file's text, or null when absent; a link, a non-regular file, another owner or an oversized file is refused. */
function readStateFile(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new CtopError(`${path} is a symbolic link`, 'ctop does not follow links in its state directory; remove it', ExitCode.failure);
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CtopError(`${path} is not a regular file`, 'remove it; ctop writes only regular files there', ExitCode.failure);
    if (st.uid !== (process.getuid?.() ?? 0)) throw new CtopError(`${path} is owned by uid ${st.uid}`, 'ctop reads only its own files there; remove it', ExitCode.failure);
    if (st.size > MAX_STATE_FILE_BYTES) throw new CtopError(`${path} is ${st.size} bytes, more than a state file can be`, 'remove it', ExitCode.failure);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export function readStateJson<T>(path: string): T | null {
  const text = readStateFile(path);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CtopError(`${path} is not valid JSON`, 'it was edited or truncated; remove it (ctop notrack revert restores from the backup)', ExitCode.failure);
  }
}

export function removeStateFile(path: string): void {
  succeedsUnless('ENOENT', () => unlinkSync(path));
}

export interface Backup {
  /** `nft list table inet ctop_notrack` before the apply; null: the table did not exist. */
  table: string | null;
  takenAt: string;
  /** SHA-256 of `table` (of "null" when null). */
  sha256: string;
}

function tableSha256(table: string | null): string {
  return createHash('sha256').update(table ?? 'null').digest('hex');
}

export function makeBackup(table: string | null): Backup {
  return { table, takenAt: new Date().toISOString(), sha256: tableSha256(table) };
}

function badBackup(path: string, why: string): CtopError {
  return new CtopError(
    `backup ${path} ${why}; ctop will not load it`,
    "it was edited or corrupted. Look at ctop's table (nft list table inet ctop_notrack) and remove it by hand if it must go: nft delete table inet ctop_notrack",
    ExitCode.failure,
  );
}

/**
 * The backup, checked before root loads it: valid JSON, its own checksum
 * right, the checksum the apply recorded (when known) the same, and the
 * table text ctop's one table and nothing else. Null when there is none.
 */
export function readVerifiedBackup(path: string, expectedSha256?: string): Backup | null {
  const text = readStateFile(path);
  if (text === null) return null;
  let b: Partial<Backup>;
  try {
    b = JSON.parse(text) as Partial<Backup>;
  } catch {
    throw badBackup(path, 'is not valid JSON');
  }
  if (typeof b !== 'object' || b === null || !(b.table === null || typeof b.table === 'string') || typeof b.sha256 !== 'string') throw badBackup(path, 'is not valid (fields missing)');
  if (tableSha256(b.table) !== b.sha256 || (expectedSha256 !== undefined && b.sha256 !== expectedSha256)) throw badBackup(path, 'does not match its checksum');
  if (b.table !== null && !isOwnTableListing(b.table)) throw badBackup(path, "is not valid: it holds more than ctop's table");
  return { table: b.table, takenAt: String(b.takenAt ?? ''), sha256: b.sha256 };
}

/** Atomically take the pending record; false when someone else already did. */
export function claim(from: string, to: string): boolean {
  return succeedsUnless('ENOENT', () => renameSync(from, to));
}

/** Field 22 of /proc/PID/stat (start time in clock ticks): a PID plus this names one process, never a later one that reuses the PID. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function lockHolder(lock: string): { pid: number; start: string } | null {
  try {
    const [pid, start] = (readStateFile(lock) ?? '').trim().split(' ');
    return pid && start ? { pid: Number(pid), start } : null;
  } catch {
    return null;
  }
}

/**
 * The namespace's lock: a file created O_EXCL holding "PID STARTTIME". A lock
 * whose holder is gone (the PID dead or reused) is broken. Waits up to
 * `waitMs`, then refuses naming the holder. Returns the release function.
 */
export async function acquireLock(lock: string, label: string, waitMs: number): Promise<() => void> {
  const me = `${process.pid} ${startTime(process.pid)}\n`;
  const until = monotonicMs() + waitMs;
  for (;;) {
    if (succeedsUnless('EEXIST', () => writeOpened(lock, C.O_CREAT | C.O_EXCL, me))) {
      return () => {
        if (readStateFile(lock) === me) removeStateFile(lock);
      };
    }
    const holder = lockHolder(lock);
    if (holder && startTime(holder.pid) !== holder.start) {
      // The holder is gone: move its lock aside under a unique name, then check it was that one.
      const aside = `${lock}.stale-${process.pid}`;
      if (claim(lock, aside)) {
        const moved = lockHolder(aside);
        if (moved && (moved.pid !== holder.pid || moved.start !== holder.start)) {
          // a live lock taken meanwhile: put it back (fails only if yet another was taken)
          try {
            linkSync(aside, lock);
          } catch {
            /* the newer lock stands */
          }
        }
        removeStateFile(aside);
      }
      continue;
    }
    if (monotonicMs() >= until) {
      throw new CtopError(
        `another ctop notrack is changing ${label} (pid ${holder?.pid ?? '?'})`,
        'one change per namespace at a time: wait for it to finish (confirm or roll back), then try again',
        ExitCode.failure,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
