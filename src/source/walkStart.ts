/**
 * The walk programs loaded, and the table found, on a native thread started
 * before a one-shot command loads the rest of its modules (cli.ts starts it
 * for `ctop census`): verifying the programs and making ctop's own entry run
 * on the other CPU while JavaScript loads, parses the options and opens the
 * namespaces. The walker (hashWalk.ts) takes the result over when it needs
 * the programs, if they were loaded with the map sizes it wants; otherwise
 * the start is closed and the walker loads its own. Leaf module: only the
 * addon and the sysctl reader, so that starting it costs almost nothing.
 */
import { loadAddon, type NativeWalkerStart } from '../native/addon.js';
import { readNetfilterSysctl } from './sysctl.js';

/** (namespace, family, protocol, port, state) groups the in-kernel census keeps */
export const MAX_GROUPS = 65_536;
/** `ctop census --max-addrs`'s default: distinct addresses the census counts */
export const DEFAULT_MAX_ADDRS = 65_536;

export interface WalkStartOptions {
  /** distinct addresses the census map holds (the programs' map size) */
  maxAddrs: number;
  /** also find the table from an entry of ctop's own (the conntrack kfuncs) */
  locateOwn: boolean;
  /** (tests) the bpf_probe_read_kernel walk where the plain-load walk would load */
  probeRead: boolean;
  /** (tests) every chain walked a second time alone, as one that moved during the walk is */
  rewalkAll: boolean;
}

export interface StartedWalk extends WalkStartOptions {
  start: NativeWalkerStart;
  /** nf_conntrack_buckets when the table was being found: the location holds for that size */
  buckets: number;
}

let started: StartedWalk | undefined;

/** Starts loading the walk programs (once per process); any failure is left for the walker to meet and report. */
export function startWalk(o: WalkStartOptions): void {
  if (started) return;
  try {
    const addon = loadAddon();
    const buckets = readNetfilterSysctl('nf_conntrack_buckets', 0);
    const maxAddrs = Math.max(2, o.maxAddrs);
    started = { ...o, maxAddrs, buckets, start: new addon.WalkerStart({ maxGroups: MAX_GROUPS, maxAddrs, locateOwn: o.locateOwn, probeRead: o.probeRead, rewalkAll: o.rewalkAll }) };
  } catch {
    started = undefined; // not built, not root: the command says so through its own path
  }
}

/**
 * The started load, if its map sizes are `maxAddrs`'s and its walk the one
 * wanted; the caller owns it from here (one taker). Any other start is closed
 * (waits for its thread, unloads), and the caller loads its own.
 */
export function takeStartedWalk(maxAddrs: number, walk: { probeRead: boolean; rewalkAll: boolean } = { probeRead: false, rewalkAll: false }): StartedWalk | undefined {
  const s = started;
  started = undefined;
  if (s && (s.maxAddrs !== Math.max(2, maxAddrs) || s.probeRead !== walk.probeRead || s.rewalkAll !== walk.rewalkAll)) {
    s.start.close();
    return undefined;
  }
  return s;
}
