/**
 * Holds a network namespace by an open file descriptor. A path such as
 * /run/netns/NAME or /proc/PID/ns/net can come to name another namespace
 * (the name deleted and re-added, the PID reused); the descriptor cannot, and
 * keeps the namespace alive. Children enter it through /proc/OURPID/fd/N.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';

export interface PinnedNetns {
  /** /proc/PID/fd/N of this process: what nsenter --net= is given. */
  path: string;
  inode: number;
  release(): void;
}

export function pinNetns(path: string, expectedInode?: number): PinnedNetns {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new CtopError(`cannot open the network namespace at ${path}: ${(e as Error).message}`, 'it may be gone; `ip netns list` shows the named ones', ExitCode.failure);
  }
  const inode = fstatSync(fd).ino;
  if (expectedInode !== undefined && inode !== expectedInode) {
    closeSync(fd);
    throw new CtopError(`${path} is now namespace ${inode}, not ${expectedInode}`, 'the name or PID was reused for another namespace; nothing was done there', ExitCode.failure);
  }
  return {
    path: `/proc/${process.pid}/fd/${fd}`,
    inode,
    release: () => closeSync(fd),
  };
}
