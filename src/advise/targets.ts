/**
 * Port specs given by the operator, turned into NOTRACK targets: with
 * `--role auto`, each gets the role(s) the kernel showed for its ports in a
 * measured window (all families summed); a forced role is taken as given.
 * Pure.
 */
import type { RoleCounts } from '../model/roles.js';
import type { PortRow } from '../model/snapshot.js';
import { resolveRoles, sumRoleCounts, type RoleEvidence } from './roles.js';
import { covers, portText, type L4, type NotrackTarget, type RoleChoice } from './rules.js';

export interface ResolvedTarget extends NotrackTarget {
  evidence: RoleEvidence;
  /** new entries on these ports in the window the role was read from */
  inserts: number;
}

const L4_NUM: Record<L4, number> = { tcp: 6, udp: 17 };

/** The window's port rows of (proto, port..portEnd). */
export function rowsOf(t: Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>, rows: readonly (PortRow & { roles?: RoleCounts })[]): (PortRow & { roles?: RoleCounts })[] {
  return rows.filter((r) => r.protoNum === L4_NUM[t.proto] && covers(t, r.port));
}

/**
 * @param rows the namespace's port rows of a measured window; null when
 *   nothing was measured (a forced role needs no window)
 */
export function resolveTargets(specs: readonly Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>[], choice: RoleChoice, rows: readonly (PortRow & { roles?: RoleCounts })[] | null): ResolvedTarget[] {
  return specs.map((s) => {
    const mine = rows ? rowsOf(s, rows) : [];
    const evidence = resolveRoles(rows ? sumRoleCounts(mine) : null, choice);
    return { proto: s.proto, port: s.port, portEnd: s.portEnd, roles: evidence.roles, evidence, inserts: mine.reduce((a, r) => a + r.inserts, 0) };
  });
}

/** "udp/11211: server (97 % of new entries to a local server, ...)" */
export function describeTarget(t: ResolvedTarget): string {
  return `${portText(t)}: ${t.roles.join('+')} (${t.evidence.evidence})`;
}
