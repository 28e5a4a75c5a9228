/** Reads net.netfilter.* sysctls of the reader's network namespace (/proc/sys shows its own). */
import { readFileSync } from 'node:fs';

/** A numeric net.netfilter.NAME; `fallback` when given and the file cannot be read, else it throws. */
export function readNetfilterSysctl(name: string, fallback?: number): number {
  try {
    return Number(readFileSync(`/proc/sys/net/netfilter/${name}`, 'utf8').trim());
  } catch (e) {
    if (fallback === undefined) throw e;
    return fallback;
  }
}
