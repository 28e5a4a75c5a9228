/**
 * The NOTRACK planner: ranks ports and port ranges by their share of new
 * entries (and of occupancy when a census is given), gives each the role(s)
 * the kernel showed for it, says what would break if it were exempted, writes
 * the rules for both directions of that traffic, and estimates the table fill
 * afterwards. The one ranker: `ctop advise` and the live screen both call
 * adviseNotrack. Pure: callers pass the snapshot, the ruleset reading and
 * what the kernel offers (helpers).
 */
import type { BaseChain, ConntrackUser, PortScope } from '../model/ruleset.js';
import type { HelperPresence, L4 } from '../model/conntrack.js';
import type { PortCensus } from '../model/portCensus.js';
import type { RoleCounts, TrafficRole } from '../model/roles.js';
import type { PortRow, SnapshotV1 } from '../model/snapshot.js';
import { resolveRoles, roleText, sumRoleCounts, type RoleEvidence } from './roles.js';
import { covers, fieldsAt, portText, ruleTexts, nftScript, untrackedAccept, type FilterHook, type NotrackTarget, type RoleChoice, type RuleTexts, type UntrackedAccept } from './rules.js';
import { ratio, round } from '../model/numbers.js';

export interface AdviseInput {
  snapshot: SnapshotV1;
  users: ConntrackUser[];
  chains: BaseChain[];
  helpers: HelperPresence[];
  /** net.netfilter.nf_conntrack_helper (automatic assignment); null where the sysctl no longer exists (>= 6.0). */
  helperAutoAssign: boolean | null;
  census?: PortCensus;
  role: RoleChoice;
  limit: number;
}

export type Severity = 'unsafe' | 'warn' | 'info';

export interface Flag {
  severity: Severity;
  reason: string;
  /** The rule it is about, one line, as `ctop doctor` prints it. */
  rule?: string;
}

export interface FillEstimate {
  /** Entries in the fullest namespace now, and the limit. */
  countNow: number;
  max: number;
  fillNow: number;
  /** Once the exempted ports' entries have timed out. */
  countAfter: number;
  fillAfter: number;
  /** 'census': entries counted per port; 'insert-share': assumes entries in proportion to inserts. */
  method: 'census' | 'insert-share';
}

export interface Candidate {
  proto: L4;
  /** first port; = portEnd for a single port */
  port: number;
  portEnd: number;
  /** ports of the range that had new entries in the window (1 for a single port) */
  portsSeen: number;
  /** the roles the rules cover, as one word ("forward", "server+local") */
  role: string;
  roles: TrafficRole[];
  roleEvidence: RoleEvidence;
  families: string[];
  inserts: number;
  insertsPerSec: number;
  /** Share of all inserts in the window, 0..1. */
  insertShare: number;
  /** Entries on these ports and their share of all entries; null without a census. */
  occupancy: { entries: number; share: number } | null;
  /** true when no flag is 'unsafe'. */
  safe: boolean;
  flags: Flag[];
  rules: RuleTexts;
  /** Accepts the user's own drop-policy chains need for untracked packets. */
  untrackedAccepts: UntrackedAccept[];
  /** Fill if only this candidate were exempted. */
  fillAfter: FillEstimate;
}

export interface NotrackAdvice {
  /** what --role asked for ('auto': each candidate's measured role) */
  role: RoleChoice;
  census: { available: boolean; source?: string; note: string };
  candidates: Candidate[];
  /** Fill if every safe candidate were exempted, and their combined rules. */
  allSafe: { ports: string[]; fillAfter: FillEstimate; nft: string } | null;
}

const L4_PROTOS: Record<number, L4> = { 6: 'tcp', 17: 'udp' };

/**
 * Ranges: ports of one protocol and role with new entries, at most
 * RANGE_MAX_GAP quiet ports apart, at least RANGE_MIN_PORTS of them, none
 * holding RANGE_MAX_MEMBER_SHARE of the group's entries or more (a dominant
 * port is its own candidate). The field report's service spread over
 * 60000-60100 at 0.5 % a port becomes one candidate at 50 %.
 */
export const RANGE_MIN_PORTS = 8;
export const RANGE_MAX_GAP = 3;
const RANGE_MAX_MEMBER_SHARE = 0.5;

function overlaps(a: [number, number], lo: number, hi: number): boolean {
  return a[0] <= hi && a[1] >= lo;
}

function inRanges(lo: number, hi: number, ranges: [number, number][] | undefined): boolean {
  return ranges !== undefined && ranges.some((r) => overlaps(r, lo, hi));
}

/**
 * Whether a rule limited to `scope` can see packets of the flows on (proto,
 * port..portEnd): requests carry the port as destination, replies as source,
 * so either field matching covers the flow. No scope: the rule sees every port.
 */
export function scopeCovers(scope: PortScope | undefined, proto: L4, port: number, portEnd = port): { covers: boolean; portSpecific: boolean } {
  if (!scope) return { covers: true, portSpecific: false };
  if (scope.proto !== undefined && scope.proto !== proto && scope.proto !== 'all') return { covers: false, portSpecific: false };
  if (scope.unsure) return { covers: true, portSpecific: false };
  if (scope.dports === undefined && scope.sports === undefined) return { covers: true, portSpecific: false };
  const c = inRanges(port, portEnd, scope.dports) || inRanges(port, portEnd, scope.sports);
  return { covers: c, portSpecific: c };
}

function where(u: ConntrackUser): string {
  const handle = u.handle !== undefined ? ` (handle ${u.handle})` : '';
  return `${u.source} ${u.family} ${u.table} ${u.chain}${handle}: ${u.detail}`;
}

/** Whether a nat-kind entry is a real rule rather than the chain/table that holds nat rules. */
function isNatRule(u: ConntrackUser): boolean {
  return u.chain !== '*' && !u.detail.startsWith('type nat hook');
}

type SafetyInput = Pick<AdviseInput, 'users' | 'chains' | 'helpers' | 'helperAutoAssign'>;

/** What would break if t's flows were exempted from tracking. */
export function notrackFlags(t: NotrackTarget, i: SafetyInput): Flag[] {
  const flags: Flag[] = [];
  // Client and forwarded flows leave through postrouting, where masquerade/SNAT for all ports would apply.
  const outgoingNat = t.roles.includes('client') || t.roles.includes('forward');
  for (const u of i.users) {
    if (u.kind === 'notrack') continue;
    const c = scopeCovers(u.scope, t.proto, t.port, t.portEnd);
    if (!c.covers) continue;
    if (u.kind === 'nat') {
      if (!isNatRule(u)) continue;
      // Untracked packets bypass the NAT hooks entirely.
      if (c.portSpecific) flags.push({ severity: 'unsafe', reason: `NAT on this port: untracked packets are not translated`, rule: where(u) });
      else if (outgoingNat) flags.push({ severity: 'unsafe', reason: `NAT for all ports: this port's ${t.roles.includes('forward') ? 'forwarded' : 'outgoing'} connections would leave untranslated`, rule: where(u) });
      else flags.push({ severity: 'warn', reason: 'NAT rule without a port filter: check it never applies to this port\'s flows', rule: where(u) });
    } else if (u.kind === 'helper') {
      if (u.chain === '*') continue; // a helper object does nothing until a rule assigns it (below)
      flags.push(
        c.portSpecific
          ? { severity: 'unsafe', reason: 'a conntrack helper is assigned to or matched on this port: its related/expected connections would break', rule: where(u) }
          : { severity: 'warn', reason: 'a helper rule for all ports: check that this port carries no helper protocol', rule: where(u) },
      );
    } else if (u.kind === 'flowtable') {
      flags.push({ severity: 'warn', reason: 'flow offload needs tracked connections: this port\'s flows would no longer be offloaded', rule: where(u) });
    } else if (c.portSpecific) {
      flags.push({
        severity: 'unsafe',
        reason: `a ${u.kind === 'connmark' ? 'connmark' : 'conntrack state'} rule matches this port and would stop matching (untracked packets have no ct state${u.verdict ? `; its verdict is ${u.verdict}` : ''})`,
        rule: where(u),
      });
    } else {
      flags.push({
        severity: 'info',
        reason: u.verdict
          ? `a conntrack rule for all ports (verdict ${u.verdict}) no longer matches this port's packets`
          : 'a conntrack rule for all ports without a verdict (counter/mark) stops seeing this port',
        rule: where(u),
      });
    }
  }
  for (const h of i.helpers) {
    if (!h.ports.some((p) => p.proto === t.proto && covers(t, p.port))) continue;
    flags.push(
      i.helperAutoAssign === true
        ? { severity: 'unsafe', reason: `the ${h.name} helper (${h.how}) serves this port and nf_conntrack_helper=1 assigns it automatically: its data connections would break` }
        : { severity: 'warn', reason: `the ${h.name} helper (${h.how}) serves this port by default; it only acts if a rule assigns it (none found above), so check before exempting` },
    );
  }
  for (const ch of i.chains) {
    const hook = dropPolicyHook(ch);
    if (!hook || fieldsAt(t.roles, hook).length === 0) continue;
    flags.push({
      severity: 'warn',
      reason: `${ch.source} ${ch.family} ${ch.table} ${ch.chain} drops by policy: untracked packets match neither new nor established and need an explicit accept (see untrackedAccepts)`,
    });
  }
  return flags;
}

/** The hook of a filter base chain that drops what no rule accepts; null for any other chain. */
function dropPolicyHook(ch: BaseChain): FilterHook | null {
  const filter = ch.source === 'nft' ? ch.type === 'filter' : ch.table === 'filter';
  if (!filter || ch.policy !== 'drop') return null;
  return ch.hook === 'input' || ch.hook === 'output' || ch.hook === 'forward' ? ch.hook : null;
}

/** The accepts the user's drop-policy chains need once t's packets are untracked. */
export function untrackedAcceptsFor(t: NotrackTarget, chains: BaseChain[]): UntrackedAccept[] {
  const out: UntrackedAccept[] = [];
  for (const ch of chains) {
    const hook = dropPolicyHook(ch);
    if (!hook) continue;
    for (const f of fieldsAt(t.roles, hook)) out.push(untrackedAccept(t, ch, f));
  }
  return out;
}

/** One port's new entries in the window, all families summed. */
interface PortKey {
  proto: L4;
  port: number;
  inserts: number;
  families: Set<string>;
  rows: (PortRow & { roles?: RoleCounts })[];
  evidence: RoleEvidence;
}

/** A candidate before rendering: one port, or a range of ports of one role. */
interface Group {
  proto: L4;
  port: number;
  portEnd: number;
  members: PortKey[];
  inserts: number;
  evidence: RoleEvidence;
}

function censusEntries(census: PortCensus | undefined, proto: L4, lo: number, hi: number): number {
  if (!census) return 0;
  if (lo === hi) return census.byPort[`${proto}/${lo}`] ?? 0;
  let n = 0;
  for (const [k, v] of Object.entries(census.byPort)) {
    const [p, port] = k.split('/');
    const x = Number(port);
    if (p === proto && x >= lo && x <= hi) n += v;
  }
  return n;
}

function estimateFill(s: SnapshotV1, exempt: Group[], totalInserts: number, census?: PortCensus): FillEstimate {
  const countNow = Math.max(0, ...s.namespaces.map((n) => n.count));
  let countAfter: number;
  let method: FillEstimate['method'];
  if (census && census.total > 0) {
    method = 'census';
    const gone = exempt.reduce((a, g) => a + censusEntries(census, g.proto, g.port, g.portEnd), 0);
    // The census may be of another moment than countNow: scale by its share.
    countAfter = Math.round(countNow * (1 - Math.min(1, gone / census.total)));
  } else {
    method = 'insert-share';
    const share = Math.min(1, ratio(exempt.reduce((a, g) => a + g.inserts, 0), totalInserts));
    countAfter = Math.round(countNow * (1 - share));
  }
  return { countNow, max: s.table.max, fillNow: round(ratio(countNow, s.table.max), 4), countAfter, fillAfter: round(ratio(countAfter, s.table.max), 4), method };
}

/** The ports with new entries, one key per (proto, port), each with its role. */
function portKeys(s: SnapshotV1, role: RoleChoice): PortKey[] {
  const byKey = new Map<string, PortKey>();
  for (const p of s.ports as (PortRow & { roles?: RoleCounts })[]) {
    const proto = L4_PROTOS[p.protoNum];
    if (!proto || p.port === 0 || p.inserts <= 0) continue;
    const key = `${proto}/${p.port}`;
    const k = byKey.get(key) ?? { proto, port: p.port, inserts: 0, families: new Set<string>(), rows: [], evidence: resolveRoles(null, role) };
    k.inserts += p.inserts;
    k.families.add(p.family);
    k.rows.push(p);
    byKey.set(key, k);
  }
  for (const k of byKey.values()) k.evidence = resolveRoles(sumRoleCounts(k.rows), role);
  return [...byKey.values()];
}

/**
 * Single ports, and runs of adjacent ports of one protocol and role whose
 * entries are individually small but together significant, as one range.
 */
function groupPorts(keys: PortKey[], role: RoleChoice): Group[] {
  const single = (k: PortKey): Group => ({ proto: k.proto, port: k.port, portEnd: k.port, members: [k], inserts: k.inserts, evidence: k.evidence });
  const out: Group[] = [];
  const sorted = [...keys].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port);
  let run: PortKey[] = [];
  const flush = () => {
    const total = run.reduce((a, k) => a + k.inserts, 0);
    const big = Math.max(0, ...run.map((k) => k.inserts));
    if (run.length >= RANGE_MIN_PORTS && big < RANGE_MAX_MEMBER_SHARE * total) {
      const first = run[0]!;
      const last = run[run.length - 1]!;
      const counts = sumRoleCounts(run.flatMap((k) => k.rows));
      out.push({ proto: first.proto, port: first.port, portEnd: last.port, members: run, inserts: total, evidence: resolveRoles(counts, role) });
    } else out.push(...run.map(single));
    run = [];
  };
  for (const k of sorted) {
    const prev = run[run.length - 1];
    const joins = prev !== undefined && prev.proto === k.proto && k.port - prev.port - 1 <= RANGE_MAX_GAP && roleText(prev.evidence.roles) === roleText(k.evidence.roles);
    if (!joins) flush();
    run.push(k);
  }
  flush();
  return out;
}

function targetOf(g: Group): NotrackTarget {
  return { proto: g.proto, port: g.port, portEnd: g.portEnd, roles: g.evidence.roles };
}

export function adviseNotrack(i: AdviseInput): NotrackAdvice {
  const s = i.snapshot;
  const groups = groupPorts(portKeys(s, i.role), i.role);
  const totalInserts = s.totals.inserts ?? s.ports.reduce((a, p) => a + p.inserts, 0);
  const census = i.census;
  const occShare = (g: Group) => (census ? ratio(censusEntries(census, g.proto, g.port, g.portEnd), census.total) : 0);
  // Rank by the larger of the two shares: a port may fill the table with few, long-lived entries.
  const score = (g: Group): number => Math.max(ratio(g.inserts, totalInserts), occShare(g));
  const ranked = groups.sort((a, b) => score(b) - score(a) || b.inserts - a.inserts || a.proto.localeCompare(b.proto) || a.port - b.port);
  const chosen = ranked.slice(0, i.limit);
  const candidates: Candidate[] = chosen.map((g) => {
    const t = targetOf(g);
    const flags = notrackFlags(t, i);
    if (g.portEnd > g.port) {
      flags.push({
        severity: 'info',
        reason: `a range: exempts all ${g.portEnd - g.port + 1} ports, ${g.members.length} of which had new entries in the window`,
      });
    }
    if (!g.evidence.inferred && i.role === 'auto') flags.push({ severity: 'warn', reason: `role not measured: ${g.evidence.evidence}` });
    const entries = censusEntries(census, g.proto, g.port, g.portEnd);
    return {
      proto: g.proto,
      port: g.port,
      portEnd: g.portEnd,
      portsSeen: g.members.length,
      role: roleText(g.evidence.roles),
      roles: g.evidence.roles,
      roleEvidence: g.evidence,
      families: [...new Set(g.members.flatMap((k) => [...k.families]))].sort(),
      inserts: g.inserts,
      insertsPerSec: round((g.inserts * 1000) / Math.max(1, s.durationMs), 2),
      insertShare: round(ratio(g.inserts, totalInserts), 4),
      occupancy: census ? { entries, share: round(ratio(entries, census.total), 4) } : null,
      safe: !flags.some((f) => f.severity === 'unsafe'),
      flags,
      rules: ruleTexts([t]),
      untrackedAccepts: untrackedAcceptsFor(t, i.chains),
      fillAfter: estimateFill(s, [g], totalInserts, census),
    };
  });
  const safe = chosen.filter((_, n) => candidates[n]!.safe);
  return {
    role: i.role,
    census: census
      ? { available: true, source: census.source, note: `occupancy from ${census.source}, ${census.total} entries` }
      : { available: false, note: 'no census: occupancy per port is not available (run with --census); fill estimates assume entries in proportion to inserts' },
    candidates,
    allSafe:
      safe.length > 0
        ? {
            ports: safe.map((g) => portText(g)),
            fillAfter: estimateFill(s, safe, totalInserts, census),
            nft: nftScript(safe.map(targetOf)),
          }
        : null,
  };
}
