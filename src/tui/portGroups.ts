/**
 * The ports of one window grouped the two ways NOTRACK works on them, for the
 * live screen's Ranges and Roles views: port ranges (runs of adjacent ports
 * of one protocol and role, as advise forms its range candidates) and roles
 * (how each port's new entries came to be, src/model/roles.ts). Each port
 * falls in exactly one group, so a group's inserts, drops and entries held
 * are its ports' sums, exact. Pure: no I/O.
 */
import { RANGE_MAX_GAP, RANGE_MIN_PORTS } from '../advise/notrack.js';
import { resolveRoles, roleText, sumRoleCounts } from '../advise/roles.js';
import type { Family } from '../model/conntrack.js';
import type { RoleCounts } from '../model/roles.js';
import type { PortRow } from '../model/snapshot.js';

/** Protocols whose ports form ranges (those NOTRACK rules take a port range for). */
const RANGE_PROTOS = new Set([6, 17]);

/** A port's rows (one per family) in one namespace. */
interface PortAgg {
  netns: number;
  proto: string;
  protoNum: number;
  port: number;
  rows: PortRow[];
  inserts: number;
  drops: number;
  /** entries held; undefined where no census counted the port */
  occupancy: number | undefined;
  /** its roles as rules cover them ("server", "server+local"); '' when it made no new entry in the window */
  role: string;
}

export interface PortGroup {
  /** stable identity, for the selection */
  id: string;
  netns: number;
  proto: string;
  protoNum: number;
  /** first and last port: equal for a single port; a role group spans its ports */
  port: number;
  portEnd: number;
  /** '' when the group made no new entry in the window (its role is unknown) */
  role: string;
  families: Family[];
  /** the ports in the group, lowest first */
  members: PortRow[];
  /** distinct ports in the group */
  ports: number;
  inserts: number;
  drops: number;
  occupancy: number | undefined;
  /** the window's new entries by role, summed over the group (null where the tier does not count them) */
  roleCounts: RoleCounts | null;
}

function roleOf(rows: readonly PortRow[]): string {
  const counts = sumRoleCounts(rows);
  if (!counts || counts.server + counts.client + counts.local + counts.forward === 0) return '';
  return roleText(resolveRoles(counts, 'auto').roles);
}

function addOcc(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : a + b;
}

/** One aggregate per (namespace, protocol, port), the families merged, as advise keys ports. */
function portAggs(rows: readonly PortRow[]): PortAgg[] {
  const by = new Map<string, PortAgg>();
  for (const p of rows) {
    const k = `${p.netns}/${p.protoNum}/${p.port}`;
    let a = by.get(k);
    if (!a) by.set(k, (a = { netns: p.netns, proto: p.proto, protoNum: p.protoNum, port: p.port, rows: [], inserts: 0, drops: 0, occupancy: undefined, role: '' }));
    a.rows.push(p);
    a.inserts += p.inserts;
    a.drops += p.drops;
    a.occupancy = addOcc(a.occupancy, p.occupancy);
  }
  for (const a of by.values()) a.role = roleOf(a.rows);
  return [...by.values()];
}

function group(members: PortAgg[], role: string | undefined): PortGroup {
  const first = members[0]!;
  const rows = members.flatMap((m) => m.rows).sort((a, b) => a.port - b.port);
  const ports = [...new Set(members.map((m) => m.port))].sort((a, b) => a - b);
  const r = role ?? roleOf(rows);
  return {
    id: role === undefined ? `${first.netns}/${first.protoNum}/${ports[0]}-${ports[ports.length - 1]}` : `${first.netns}/${first.protoNum}/role/${r}`,
    netns: first.netns,
    proto: first.proto,
    protoNum: first.protoNum,
    port: ports[0]!,
    portEnd: ports[ports.length - 1]!,
    role: r,
    families: [...new Set(rows.map((x) => x.family))].sort(),
    members: rows,
    ports: ports.length,
    inserts: members.reduce((n, m) => n + m.inserts, 0),
    drops: members.reduce((n, m) => n + m.drops, 0),
    occupancy: members.reduce<number | undefined>((n, m) => addOcc(n, m.occupancy), undefined),
    roleCounts: sumRoleCounts(rows),
  };
}

/**
 * Ranges: per namespace and protocol (TCP, UDP), runs of at least
 * RANGE_MIN_PORTS ports with gaps of at most RANGE_MAX_GAP whose roles agree
 * become one group; the other ports stay single. A port counts when it made
 * new entries, was refused, holds entries, or moved within the last minute;
 * one that made no new entry in the window has no role to disagree with, so
 * it joins the run it sits in.
 */
export function rangeGroups(rows: readonly PortRow[]): PortGroup[] {
  const out: PortGroup[] = [];
  const byProto = new Map<string, PortAgg[]>();
  for (const a of portAggs(rows)) {
    if (!RANGE_PROTOS.has(a.protoNum) || a.port === 0) {
      out.push(group([a], undefined));
      continue;
    }
    const k = `${a.netns}/${a.protoNum}`;
    const list = byProto.get(k);
    if (list) list.push(a);
    else byProto.set(k, [a]);
  }
  for (const list of byProto.values()) {
    list.sort((a, b) => a.port - b.port);
    let run: PortAgg[] = [];
    let runRole = '';
    const flush = (): void => {
      if (run.length >= RANGE_MIN_PORTS) out.push(group(run, undefined));
      else for (const a of run) out.push(group([a], undefined));
      run = [];
      runRole = '';
    };
    for (const a of list) {
      const prev = run[run.length - 1];
      const joins = prev !== undefined && a.port - prev.port - 1 <= RANGE_MAX_GAP && (a.role === '' || runRole === '' || a.role === runRole);
      if (!joins) flush();
      run.push(a);
      if (a.role !== '') runRole = a.role;
    }
    flush();
  }
  return out;
}

/**
 * Roles: per namespace and protocol, the ports grouped by their roles as
 * NOTRACK rules would cover them ("server", "server+local"), and the ports
 * that made no new entry in the window (refused or holding entries only)
 * in a group of their own. Ports with nothing in the window are left out.
 */
export function roleGroups(rows: readonly PortRow[]): PortGroup[] {
  const by = new Map<string, PortAgg[]>();
  for (const a of portAggs(rows)) {
    if (a.inserts === 0 && a.drops === 0 && !a.occupancy) continue;
    const k = `${a.netns}/${a.protoNum}/${a.role}`;
    const list = by.get(k);
    if (list) list.push(a);
    else by.set(k, [a]);
  }
  return [...by.values()].map((list) => group(list.sort((a, b) => a.port - b.port), list[0]!.role));
}
