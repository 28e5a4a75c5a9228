/**
 * On-disk state of `ctop notrack`: per target namespace, the backup of
 * ctop's table taken before the last apply and, while an apply waits for
 * confirmation, a pending record the watchdog owns.
 *
 * Confirmation and rollback race for one atomic rename of the pending file:
 * `confirm` renames it to .confirmed, the watchdog to .rollingback; whoever
 * renames first wins, the other finds it gone.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/ctop';

export interface Pending {
  /** Target namespace: path to enter (undefined: the host's) and its inode. */
  netnsPath?: string;
  inode: number;
  /** Wall-clock deadline, ms since the epoch. */
  deadlineMs: number;
  backupFile: string;
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
  /** Written by the watchdog once it watches (its pid); the change waits for it. */
  armed: string;
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
    armed: `${base}.armed`,
    log: `${base}.log`,
  };
}

/** Write-then-rename with fsync: a crash leaves the old file or the new one, never half of one. */
export function writeDurable(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export interface Backup {
  /** `nft list table inet ctop_notrack` before the apply; null: the table did not exist. */
  table: string | null;
  takenAt: string;
}

export function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Atomically take the pending record; false when someone else already did. */
export function claim(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
