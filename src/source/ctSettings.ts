/**
 * The host and namespace facts the advisors need: RAM, word size, the
 * nf_conntrack slab object size, helpers the kernel has, the TCP timeouts and
 * the helper auto-assignment sysctl of a namespace. Each reading that fails is
 * reported, never thrown. (The census is source/portCensusSource.ts.)
 */
import { existsSync, readFileSync } from 'node:fs';
import { describeError } from '../errors.js';
import { HELPER_PORTS, LINGERING_STATES, type HelperPresence, type HostFacts, type LingeringState } from '../model/conntrack.js';
import { nsExec } from '../util/nsExec.js';

/** Modules worth naming when judging whether conntrack can go: the core, NAT, and the table front-ends. */
const CORE_MODULES = ['nf_conntrack', 'nf_nat', 'nf_conntrack_netlink', 'nf_tables', 'nft_ct', 'nft_nat', 'ip_tables', 'iptable_nat', 'iptable_raw', 'xt_conntrack', 'xt_state', 'xt_CT'];

export function readHostFacts(errors: string[]): HostFacts {
  let memBytes = 0;
  try {
    const m = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    memBytes = m ? Number(m[1]) * 1024 : 0;
  } catch (e) {
    errors.push(`/proc/meminfo: ${describeError(e)}`);
  }
  let entryBytes = 0;
  try {
    // "nf_conntrack  <active> <num> <objsize> ..."
    const m = /^nf_conntrack\s+\d+\s+\d+\s+(\d+)/m.exec(readFileSync('/proc/slabinfo', 'utf8'));
    entryBytes = m ? Number(m[1]) : 0;
  } catch (e) {
    errors.push(`/proc/slabinfo: ${describeError(e)}`);
  }
  // A module shows /sys/module/NAME/initstate; a built-in has the directory only.
  const helpers: HelperPresence[] = [];
  for (const [name, ports] of Object.entries(HELPER_PORTS)) {
    const dir = `/sys/module/nf_conntrack_${name}`;
    if (existsSync(dir)) helpers.push({ name, how: existsSync(`${dir}/initstate`) ? 'module' : 'built-in', ports });
  }
  const modules: HostFacts['modules'] = [];
  for (const name of CORE_MODULES) {
    const dir = `/sys/module/${name}`;
    if (existsSync(dir)) modules.push({ name, how: existsSync(`${dir}/initstate`) ? 'module' : 'built-in' });
  }
  const wordBits = /64/.test(process.arch) ? 64 : 32;
  return { memBytes, wordBits, entryBytes, helpers, modules };
}

export interface NetnsFacts {
  timeoutsS: Partial<Record<LingeringState, number>>;
  helperAutoAssign: boolean | null;
}

/** Per-namespace sysctls, read from inside the namespace (/proc/sys/net is per netns). */
export function readNetnsFacts(netnsPath: string | undefined, errors: string[]): NetnsFacts {
  const names = [...LINGERING_STATES.map((s) => `nf_conntrack_tcp_timeout_${s}`), 'nf_conntrack_helper'];
  const timeoutsS: NetnsFacts['timeoutsS'] = {};
  let helperAutoAssign: boolean | null = null;
  // One `grep -H` prints "file:value" for the files that exist; a missing one is not an error.
  let out = '';
  try {
    out = nsExec('sh', ['-c', 'cd /proc/sys/net/netfilter && grep -H . "$@" 2>/dev/null; true', 'sh', ...names], { netnsPath });
  } catch (e) {
    errors.push(`netfilter sysctls: ${describeError(e)}`);
  }
  for (const line of out.split('\n')) {
    const [file, value] = line.split(':');
    if (file === undefined || value === undefined) continue;
    if (file === 'nf_conntrack_helper') helperAutoAssign = value.trim() === '1';
    const state = LINGERING_STATES.find((s) => file === `nf_conntrack_tcp_timeout_${s}`);
    if (state) timeoutsS[state] = Number(value);
  }
  return { timeoutsS, helperAutoAssign };
}
