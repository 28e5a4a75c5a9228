/** The host ctop runs on, as every window, recording and report names it (uname -n and -r). */
import { hostname, release } from 'node:os';
import type { SnapshotV1 } from '../model/snapshot.js';

export function thisHost(): Pick<SnapshotV1, 'host' | 'kernel'> {
  return { host: hostname(), kernel: release() };
}
