/**
 * The role of a port (or range) in a namespace, read from where the kernel
 * confirmed its new entries (model/roles.ts), and the evidence in words.
 * Pure. A port seen in several roles gets every role that holds at least
 * ROLE_FLOOR of its entries: the union of their directions costs nothing
 * extra on the same port, and leaving one out leaves its entries tracked.
 */
import { TRAFFIC_ROLES, type RoleCounts, type TrafficRole } from '../model/roles.js';
import type { RoleChoice } from './rules.js';

/** Share below which a role is taken for noise (a stray health check). */
const ROLE_FLOOR = 0.02;

const ROLE_WORDS: Record<TrafficRole, string> = {
  server: 'to a local server',
  client: 'from a local client',
  local: 'between two local ends',
  forward: 'forwarded',
};

export interface RoleEvidence {
  /** The roles the rules cover (never empty). */
  roles: TrafficRole[];
  /** true: measured; false: forced with --role, or assumed without a measurement */
  inferred: boolean;
  /** New entries per role in the window; null where the probe tier does not count them. */
  counts: RoleCounts | null;
  /** e.g. "97 % of new entries forwarded, 3 % to a local server" */
  evidence: string;
}

export function sumRoleCounts(rows: readonly { roles?: RoleCounts }[]): RoleCounts | null {
  let out: RoleCounts | null = null;
  for (const r of rows) {
    if (!r.roles) continue;
    out ??= { server: 0, client: 0, local: 0, forward: 0 };
    for (const k of TRAFFIC_ROLES) out[k] += r.roles[k];
  }
  return out;
}

function pct(n: number, total: number): string {
  const p = (n * 100) / total;
  return p >= 10 || p === 0 ? `${Math.round(p)} %` : `${p.toFixed(1)} %`;
}

/** "97 % of new entries forwarded, 3 % to a local server" (largest first). */
export function describeCounts(c: RoleCounts): string {
  const total = TRAFFIC_ROLES.reduce((a, k) => a + c[k], 0);
  if (total === 0) return 'no new entries in the window';
  const parts = [...TRAFFIC_ROLES].filter((k) => c[k] > 0).sort((a, b) => c[b] - c[a]);
  return parts.map((k, i) => `${pct(c[k], total)}${i === 0 ? ' of new entries' : ''} ${ROLE_WORDS[k]}`).join(', ');
}

/** The roles to exempt for a choice, given what the kernel counted. */
export function resolveRoles(counts: RoleCounts | null, choice: RoleChoice): RoleEvidence {
  const measured = counts ? describeCounts(counts) : null;
  if (choice !== 'auto') {
    return { roles: [choice], inferred: false, counts, evidence: `forced with --role ${choice}${measured ? ` (measured: ${measured})` : ''}` };
  }
  const total = counts ? TRAFFIC_ROLES.reduce((a, k) => a + counts[k], 0) : 0;
  if (!counts || total === 0) {
    return {
      roles: ['server'],
      inferred: false,
      counts,
      evidence: counts ? 'no new entries counted per role: server assumed (pass --role)' : 'roles not counted by this probe tier: server assumed (pass --role)',
    };
  }
  const roles = TRAFFIC_ROLES.filter((k) => counts[k] / total >= ROLE_FLOOR);
  return { roles, inferred: true, counts, evidence: measured! };
}

/** "server", "forward", "server+local": the roles as one word for tables and JSON. */
export function roleText(roles: readonly TrafficRole[]): string {
  return roles.join('+');
}
