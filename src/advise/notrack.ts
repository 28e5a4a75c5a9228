/**
 * The NOTRACK advisor: ranks (protocol, port) keys by their share of inserts
 * (and of occupancy when a census is given), says for each what would break
 * if it were exempted from tracking, writes the rules, and estimates the
 * table fill afterwards. Pure: callers pass the snapshot, the ruleset reading
 * and what the kernel offers (helpers); see src/commands/advise.ts.
 */
import type { BaseChain, ConntrackUser, PortScope } from '../model/ruleset.js';
import type { HelperPresence, L4 } from '../model/conntrack.js';
import type { PortCensus } from '../model/portCensus.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { iptablesCommands, iptablesRestore, nftScript, untrackedAccept, type NotrackTarget, type Role, type UntrackedAccept } from './rules.js';

export interface AdviseInput {
  snapshot: SnapshotV1;
  users: ConntrackUser[];
  chains: BaseChain[];
  helpers: HelperPresence[];
  /** net.netfilter.nf_conntrack_helper (automatic assignment); null where the sysctl no longer exists (>= 6.0). */
  helperAutoAssign: boolean | null;
  census?: PortCensus;
  role: Role;
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
  port: number;
  families: string[];
  inserts: number;
  insertsPerSec: number;
  /** Share of all inserts in the window, 0..1. */
  insertShare: number;
  /** Entries on this port and their share of all entries; null without a census. */
  occupancy: { entries: number; share: number } | null;
  /** true when no flag is 'unsafe'. */
  safe: boolean;
  flags: Flag[];
  rules: { nft: string; iptablesLegacy: string[]; iptablesNft: string[]; iptablesRestore: string };
  /** Accepts the user's own drop-policy chains need for untracked packets. */
  untrackedAccepts: UntrackedAccept[];
  /** Fill if only this port were exempted. */
  fillAfter: FillEstimate;
}

export interface NotrackAdvice {
  role: Role;
  census: { available: boolean; source?: string; note: string };
  candidates: Candidate[];
  /** Fill if every safe candidate were exempted, and their combined rules. */
  allSafe: { ports: string[]; fillAfter: FillEstimate; nft: string } | null;
}

const L4_PROTOS: Record<number, L4> = { 6: 'tcp', 17: 'udp' };

function inRanges(port: number, ranges: [number, number][] | undefined): boolean {
  return ranges !== undefined && ranges.some(([a, b]) => port >= a && port <= b);
}

/**
 * Whether a rule limited to `scope` can see packets of the flow on (proto,
 * port): requests carry the port as destination, replies as source, so either
 * field matching covers the flow. No scope: the rule sees every port.
 */
export function scopeCovers(scope: PortScope | undefined, proto: L4, port: number): { covers: boolean; portSpecific: boolean } {
  if (!scope) return { covers: true, portSpecific: false };
  if (scope.proto !== undefined && scope.proto !== proto && scope.proto !== 'all') return { covers: false, portSpecific: false };
  if (scope.unsure) return { covers: true, portSpecific: false };
  if (scope.dports === undefined && scope.sports === undefined) return { covers: true, portSpecific: false };
  const covers = inRanges(port, scope.dports) || inRanges(port, scope.sports);
  return { covers, portSpecific: covers };
}

function where(u: ConntrackUser): string {
  const handle = u.handle !== undefined ? ` (handle ${u.handle})` : '';
  return `${u.source} ${u.family} ${u.table} ${u.chain}${handle}: ${u.detail}`;
}

/** Whether a nat-kind entry is a real rule rather than the chain/table that holds nat rules. */
function isNatRule(u: ConntrackUser): boolean {
  return u.chain !== '*' && !u.detail.startsWith('type nat hook');
}

/** What would break if t's flows were exempted from tracking. */
export function notrackFlags(t: NotrackTarget, i: Pick<AdviseInput, 'users' | 'chains' | 'helpers' | 'helperAutoAssign'>): Flag[] {
  const flags: Flag[] = [];
  for (const u of i.users) {
    if (u.kind === 'notrack') continue;
    const c = scopeCovers(u.scope, t.proto, t.port);
    if (!c.covers) continue;
    if (u.kind === 'nat') {
      if (!isNatRule(u)) continue;
      // Untracked packets bypass the NAT hooks entirely.
      if (c.portSpecific) flags.push({ severity: 'unsafe', reason: `NAT on this port: untracked packets are not translated`, rule: where(u) });
      else if (t.role === 'client') flags.push({ severity: 'unsafe', reason: 'NAT for all ports: this port\'s outgoing connections would leave untranslated', rule: where(u) });
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
    if (!h.ports.some((p) => p.proto === t.proto && p.port === t.port)) continue;
    flags.push(
      i.helperAutoAssign === true
        ? { severity: 'unsafe', reason: `the ${h.name} helper (${h.how}) serves this port and nf_conntrack_helper=1 assigns it automatically: its data connections would break` }
        : { severity: 'warn', reason: `the ${h.name} helper (${h.how}) serves this port by default; it only acts if a rule assigns it (none found above), so check before exempting` },
    );
  }
  for (const ch of i.chains) {
    if (!dropPolicyFilter(ch)) continue;
    flags.push({
      severity: 'warn',
      reason: `${ch.source} ${ch.family} ${ch.table} ${ch.chain} drops by policy: untracked packets match neither new nor established and need an explicit accept (see untrackedAccepts)`,
    });
  }
  return flags;
}

/** An input or output filter chain that drops what no rule accepts. */
function dropPolicyFilter(ch: BaseChain): boolean {
  const filter = ch.source === 'nft' ? ch.type === 'filter' : ch.table === 'filter';
  return filter && ch.policy === 'drop' && (ch.hook === 'input' || ch.hook === 'output');
}

/** The accepts the user's drop-policy chains need once t's packets are untracked. */
export function untrackedAcceptsFor(t: NotrackTarget, chains: BaseChain[]): UntrackedAccept[] {
  return chains.filter(dropPolicyFilter).map((ch) => untrackedAccept(t, ch, ch.hook === 'input' ? 'in' : 'out'));
}

function ratio(n: number, d: number): number {
  return d > 0 ? n / d : 0;
}

function round(n: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

interface Key {
  proto: L4;
  port: number;
  inserts: number;
  families: Set<string>;
}

function estimateFill(s: SnapshotV1, exempt: Key[], totalInserts: number, census?: PortCensus): FillEstimate {
  const countNow = Math.max(0, ...s.namespaces.map((n) => n.count));
  let countAfter: number;
  let method: FillEstimate['method'];
  if (census && census.total > 0) {
    method = 'census';
    const gone = exempt.reduce((a, k) => a + (census.byPort[`${k.proto}/${k.port}`] ?? 0), 0);
    // The census may be of another moment than countNow: scale by its share.
    countAfter = Math.round(countNow * (1 - Math.min(1, gone / census.total)));
  } else {
    method = 'insert-share';
    const share = Math.min(1, ratio(exempt.reduce((a, k) => a + k.inserts, 0), totalInserts));
    countAfter = Math.round(countNow * (1 - share));
  }
  return { countNow, max: s.table.max, fillNow: round(ratio(countNow, s.table.max)), countAfter, fillAfter: round(ratio(countAfter, s.table.max)), method };
}

export function adviseNotrack(i: AdviseInput): NotrackAdvice {
  const s = i.snapshot;
  const byKey = new Map<string, Key>();
  for (const p of s.ports) {
    const proto = L4_PROTOS[p.protoNum];
    if (!proto || p.port === 0 || p.inserts <= 0) continue;
    const key = `${proto}/${p.port}`;
    const k = byKey.get(key) ?? { proto, port: p.port, inserts: 0, families: new Set<string>() };
    k.inserts += p.inserts;
    k.families.add(p.family);
    byKey.set(key, k);
  }
  const totalInserts = s.totals.inserts ?? s.ports.reduce((a, p) => a + p.inserts, 0);
  const census = i.census;
  const score = (k: Key): number => {
    // Rank by the larger of the two shares: a port may fill the table with few, long-lived entries.
    const occ = census ? ratio(census.byPort[`${k.proto}/${k.port}`] ?? 0, census.total) : 0;
    return Math.max(ratio(k.inserts, totalInserts), occ);
  };
  const ranked = [...byKey.values()].sort((a, b) => score(b) - score(a) || b.inserts - a.inserts || a.proto.localeCompare(b.proto) || a.port - b.port);
  const candidates: Candidate[] = ranked.slice(0, i.limit).map((k) => {
    const t: NotrackTarget = { proto: k.proto, port: k.port, role: i.role };
    const flags = notrackFlags(t, i);
    const entries = census ? (census.byPort[`${k.proto}/${k.port}`] ?? 0) : 0;
    return {
      proto: k.proto,
      port: k.port,
      families: [...k.families].sort(),
      inserts: k.inserts,
      insertsPerSec: round((k.inserts * 1000) / Math.max(1, s.durationMs), 2),
      insertShare: round(ratio(k.inserts, totalInserts)),
      occupancy: census ? { entries, share: round(ratio(entries, census.total)) } : null,
      safe: !flags.some((f) => f.severity === 'unsafe'),
      flags,
      rules: {
        nft: nftScript([t]),
        iptablesLegacy: iptablesCommands([t], 'legacy'),
        iptablesNft: iptablesCommands([t], 'nft'),
        iptablesRestore: iptablesRestore([t]),
      },
      untrackedAccepts: untrackedAcceptsFor(t, i.chains),
      fillAfter: estimateFill(s, [k], totalInserts, census),
    };
  });
  const safe = candidates.filter((c) => c.safe);
  const safeKeys = safe.map((c) => byKey.get(`${c.proto}/${c.port}`)!);
  return {
    role: i.role,
    census: census
      ? { available: true, source: census.source, note: `occupancy from ${census.source}, ${census.total} entries` }
      : { available: false, note: 'no census: occupancy per port is not available (run with --census); fill estimates assume entries in proportion to inserts' },
    candidates,
    allSafe:
      safe.length > 0
        ? {
            ports: safe.map((c) => `${c.proto}/${c.port}`),
            fillAfter: estimateFill(s, safeKeys, totalInserts, census),
            nft: nftScript(safe.map((c) => ({ proto: c.proto, port: c.port, role: i.role }))),
          }
        : null,
  };
}
