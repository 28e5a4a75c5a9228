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
import { ownerLabel, type NetnsOwner } from '../model/owner.js';
import { OwnerResolver } from './netnsOwner.js';

export interface NetnsRef {
  inode: number;
  /** Path to open for setns(). */
  path: string;
  /** One line naming it by its owner, cleaned for any terminal: "host", "pod
   * web/nginx-7d9", "docker cache", "sshd.service", the `ip netns` name, or
   * "pid N (comm)". */
  name: string;
  /** Who lives in it (netnsOwner.ts); the fields as found, not cleaned. */
  owner?: NetnsOwner;
}

/** Longest name shown for a namespace. */
const NAME_MAX = 120;

const NAMED_DIR = '/run/netns';

function inodeOfLink(link: string): number | undefined {
  // readlink gives "net:[4026531840]"
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/**
 * The kernel gives the initial namespace a fixed inode since Linux 6.9
 * (PROC_NET_INIT_INO, include/linux/proc_ns.h); earlier kernels allocate
 * namespace inodes from 0xF0000000 up, so it never names another one.
 */
export const INIT_NET_INO = 0xeffffff9;

/**
 * The initial (host) namespace's inode. init's namespace, read with readlink:
 * stat of /proc/1/ns/net may be denied where readlink is not (ptrace access
 * checks differ; this VM denies the stat). Then kthreadd's: kernel threads
 * live in the initial namespace. 0 when neither can be read; the scan then
 * recognises INIT_NET_INO. Never our own namespace: ctop may run in another.
 */
export function hostNetnsInode(): number {
  for (const pid of ['1', '2']) {
    try {
      if (pid === '2' && readFileSync('/proc/2/comm', 'utf8').trim() !== 'kthreadd') continue;
      const inode = inodeOfLink(readlinkSync(`/proc/${pid}/ns/net`));
      if (inode !== undefined) return inode;
    } catch {
      // try the next
    }
    try {
      if (pid === '1') return statSync('/proc/1/ns/net').ino;
    } catch {
      // try the next
    }
  }
  return 0;
}

function isHostInode(inode: number, host: number): boolean {
  return host !== 0 ? inode === host : inode === INIT_NET_INO;
}

/** One per process: names persist across scans (a pod being torn down keeps its name). */
const owners = new OwnerResolver();

function refName(owner: NetnsOwner): string {
  return cleanText(ownerLabel(owner), NAME_MAX);
}

export function scanNamespaces(): NetnsRef[] {
  const found = new Map<number, { path: string; named?: string; pids: number[] }>();
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
      if (!found.has(inode)) found.set(inode, { path, named: name, pids: [] });
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
    if (inode === undefined) continue;
    const f = found.get(inode);
    if (!f) found.set(inode, { path, pids: [Number(pid)] });
    else if (f.pids.length < 16) f.pids.push(Number(pid));
  }
  owners.beginScan();
  owners.retain(new Set(found.keys()));
  const refs: NetnsRef[] = [];
  for (const [inode, f] of found) {
    const owner = owners.resolve({ inode, pids: f.pids, ...(f.named !== undefined ? { named: f.named } : {}), host: isHostInode(inode, host) });
    refs.push({ inode, path: f.path, name: refName(owner), owner });
  }
  return refs.sort((a, b) => a.inode - b.inode);
}

/** --netns NAME|PATH: an `ip netns` name or a path such as /proc/PID/ns/net. */
export function resolveNetns(arg: string): NetnsRef {
  const path = arg.includes('/') ? arg : join(NAMED_DIR, arg);
  try {
    const st = statSync(path);
    if (isHostInode(st.ino, hostNetnsInode())) return { inode: st.ino, path, name: 'host', owner: { kind: 'host', name: 'host' } };
    // a pod's or container's namespace is named by its owner; others by the word given
    const owner = scanNamespaces().find((r) => r.inode === st.ino)?.owner;
    const byOwner = owner && (owner.kind === 'pod' || owner.kind === 'container');
    return { inode: st.ino, path, name: byOwner ? refName(owner) : cleanText(arg, NAME_MAX), ...(owner ? { owner } : {}) };
  } catch {
    throw new CtopError(
      `--netns: no network namespace at '${arg}'`,
      '`ip netns list` shows the named ones; a path such as /proc/PID/ns/net works too',
      ExitCode.usage,
    );
  }
}
