/**
 * Finds the host's network namespaces: those of running processes
 * (/proc/PID/ns/net) and named ones (`ip netns add` bind-mounts them under
 * /run/netns, often with no process inside). A namespace kept alive only by
 * an open file or socket elsewhere is invisible here, and so is not watched.
 */
import { readdirSync, readlinkSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtopError, ExitCode } from '../errors.js';
import { cleanText } from '../util/sanitize.js';

export interface NetnsRef {
  inode: number;
  /** Path to open for setns(). */
  path: string;
  /** "host", the `ip netns` name, or "pid N (comm)". */
  name: string;
}

const NAMED_DIR = '/run/netns';

function inodeOfLink(link: string): number | undefined {
  // readlink gives "net:[4026531840]"
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

function comm(pid: string): string {
  try {
    return cleanText(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 32); // the process sets its comm: hostile text
  } catch {
    return '?';
  }
}

/** The initial namespace is init's; where init is hidden from us (a sandbox
 * may deny it even to root), our own is the best guess. */
export function hostNetnsInode(): number {
  for (const p of ['/proc/1/ns/net', '/proc/self/ns/net']) {
    try {
      return statSync(p).ino;
    } catch {
      // try the next
    }
  }
  return 0;
}

export function scanNamespaces(): NetnsRef[] {
  const byInode = new Map<number, NetnsRef>();
  const host = hostNetnsInode();
  let named: string[];
  try {
    named = readdirSync(NAMED_DIR);
  } catch {
    named = [];
  }
  for (const name of named) {
    const path = join(NAMED_DIR, name);
    try {
      const inode = statSync(path).ino;
      if (!byInode.has(inode)) byInode.set(inode, { inode, path, name: inode === host ? 'host' : name });
    } catch {
      // removed between readdir and stat
    }
  }
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const path = `/proc/${pid}/ns/net`;
    let inode: number | undefined;
    try {
      inode = inodeOfLink(readlinkSync(path));
    } catch {
      continue; // the process exited, or is a kernel thread we may not read
    }
    if (inode === undefined || byInode.has(inode)) continue;
    byInode.set(inode, { inode, path, name: inode === host ? 'host' : `pid ${pid} (${comm(pid)})` });
  }
  return [...byInode.values()].sort((a, b) => a.inode - b.inode);
}

/** --netns NAME|PATH: an `ip netns` name or a path such as /proc/PID/ns/net. */
export function resolveNetns(arg: string): NetnsRef {
  const path = arg.includes('/') ? arg : join(NAMED_DIR, arg);
  try {
    const st = statSync(path);
    return { inode: st.ino, path, name: st.ino === hostNetnsInode() ? 'host' : arg };
  } catch {
    throw new CtopError(
      `--netns: no network namespace at '${arg}'`,
      '`ip netns list` shows the named ones; a path such as /proc/PID/ns/net works too',
      ExitCode.usage,
    );
  }
}
