/**
 * The `ctop advise` document (ctop.advice/v1) and the pure plan that builds
 * it: per namespace with activity, NOTRACK candidates (advise/notrack.ts),
 * what keeps conntrack on (keepsOn.ts) and sizing (sizing.ts). The command
 * (commands/advise.ts) only gathers the inputs; tests feed fixtures.
 */
import type { BaseChain, ConntrackUser } from '../model/ruleset.js';
import type { HostFacts, LingeringState } from '../model/conntrack.js';
import type { OccupancyMethod } from '../model/census.js';
import type { NetnsOwner } from '../model/owner.js';
import type { NativePortCensus } from '../model/portCensus.js';
import { forNamespace, type SnapshotV1 } from '../model/snapshot.js';
import { adviseSizing, type SizingAdvice } from './sizing.js';
import { keepsOn, type KeepsOnReport } from './keepsOn.js';
import { adviseNotrack, type NotrackAdvice } from './notrack.js';
import type { RoleChoice } from './rules.js';

const ADVICE_SCHEMA = 'ctop.advice/v1';

export interface NamespaceAdvice {
  inode: number;
  name: string;
  /** who lives in it (model/owner.ts) */
  owner?: NetnsOwner;
  entries: number;
  notrack: NotrackAdvice;
  keepsOn: KeepsOnReport;
  sizing: SizingAdvice;
  errors: string[];
}

/** How --census counted (the `ctop census` machinery): absent without --census. */
export interface AdviceCensus {
  occupancy: OccupancyMethod;
  /** why the in-kernel count was not used */
  fallbackReason?: string;
  occupancyMs: number;
  /** seconds left on TCP entries: 'histogram' (per state, 4 slots per power of two; sizing gives wouldFree as a range), or
   * 'unavailable' (the in-kernel walk without the kernel's HZ) */
  remainingByState: 'histogram' | 'unavailable';
}

/** The walk reads nf_conn.timeout in jiffies and needs CONFIG_HZ to turn it into seconds. */
const REMAINING_UNAVAILABLE = 'the census could not read entry timeouts (kernel HZ unknown: no kernel config for libbpf)';

export interface AdviceReport {
  schema: typeof ADVICE_SCHEMA;
  host: string;
  kernel: string;
  durationMs: number;
  probeTier: string;
  census?: AdviceCensus;
  namespaces: NamespaceAdvice[];
  errors: string[];
}

/** One watched namespace's readings. */
export interface NamespaceInput {
  inode: number;
  ruleset: { users: ConntrackUser[]; chains: BaseChain[]; errors: string[] };
  helperAutoAssign: boolean | null;
  timeoutsS: Partial<Record<LingeringState, number>>;
  census?: NativePortCensus;
  /** what could not be read */
  errors: string[];
}

export interface AdvicePlanInput {
  /** the measured window, every namespace, every port row */
  snapshot: SnapshotV1;
  host: HostFacts;
  kernelRelease: string;
  /** readings per namespace inode; a namespace without one is not watched */
  namespaces: Map<number, NamespaceInput>;
  /** --netns given: advise on it even when idle */
  oneNamespace: boolean;
  role: RoleChoice;
  top: number;
  census?: AdviceCensus;
  errors: string[];
}

/** One namespace's NOTRACK candidates: what advise prints and the live screen shows. */
export function namespaceNotrack(s: SnapshotV1, inode: number, ns: NamespaceInput, host: Pick<HostFacts, 'helpers'>, role: RoleChoice, top: number): NotrackAdvice {
  return adviseNotrack({
    snapshot: forNamespace(s, inode),
    users: ns.ruleset.users,
    chains: ns.ruleset.chains,
    helpers: host.helpers,
    helperAutoAssign: ns.helperAutoAssign,
    ...(ns.census ? { census: ns.census } : {}),
    role,
    limit: top,
  });
}

export function planAdvice(i: AdvicePlanInput): AdviceReport {
  const snap = i.snapshot;
  const namespaces: NamespaceAdvice[] = [];
  for (const n of snap.namespaces) {
    const ns = i.namespaces.get(n.inode);
    const busy = n.count > 0 || (n.inserts ?? 0) > 0 || n.drops > 0;
    // Without --netns, advise on namespaces that are doing something.
    if (!ns || (!i.oneNamespace && !busy)) continue;
    const census = ns.census;
    namespaces.push({
      inode: n.inode,
      name: n.name,
      ...(n.owner ? { owner: n.owner } : {}),
      entries: n.count,
      notrack: namespaceNotrack(snap, n.inode, ns, i.host, i.role, i.top),
      keepsOn: keepsOn({ users: ns.ruleset.users, active: busy, helpers: i.host.helpers, modules: i.host.modules, errors: ns.ruleset.errors }),
      sizing: adviseSizing({
        memBytes: i.host.memBytes,
        wordBits: i.host.wordBits,
        kernelRelease: i.kernelRelease,
        max: snap.table.max,
        buckets: snap.table.buckets,
        count: n.count,
        entryBytes: i.host.entryBytes,
        timeoutsS: ns.timeoutsS,
        ...(census
          ? {
              entriesByState: census.entriesByState,
              ...(census.remainingHistogramByState ? { remainingHistogramByState: census.remainingHistogramByState } : { remainingUnavailable: REMAINING_UNAVAILABLE }),
            }
          : {}),
      }),
      errors: [...ns.ruleset.errors, ...ns.errors],
    });
  }
  return {
    schema: ADVICE_SCHEMA,
    host: snap.host,
    kernel: snap.kernel,
    durationMs: snap.durationMs,
    probeTier: snap.probe.tier,
    ...(i.census ? { census: i.census } : {}),
    namespaces,
    errors: [...i.errors, ...snap.netnsErrors.map((e) => `${e.name}: ${e.error}`)],
  };
}
