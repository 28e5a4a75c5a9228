/**
 * The verdict of `ctop validate`: the namespace measured in a window with
 * counting-only rules and in a window of the same length with the notrack
 * rules, on the same traffic. It judges the namespace, not the port: the
 * exempted traffic's new entries in BOTH directions (an entry created by a
 * reply has the service port as its original source port), the namespace's
 * insert rate and the slope of its entry count, and whether packets keep
 * flowing through ctop's rules. Pure: windows in, verdict out.
 */
import type { RoleCounts, TrafficRole } from '../model/roles.js';
import type { PortRow, TupleRow } from '../model/snapshot.js';
import { resolveRoles, sumRoleCounts, type RoleEvidence } from './roles.js';
import { ALL_DIRECTIONS, covers, directions, portText, ruleComment, type Direction, type NotrackTarget } from './rules.js';
import { rowsOf } from './targets.js';
import { round } from '../model/numbers.js';

export interface ValidationWindow {
  durationMs: number;
  /** The namespace's port rows: new entries per original destination port, with their roles where the tier counts them. */
  ports: (PortRow & { roles?: RoleCounts })[];
  /** The namespace's tuple rows: each new entry's original source and destination port. */
  tuples: TupleRow[];
  /** Inserts the tuple map had no room for in the window (reply-created entries may be undercounted). */
  tupleMapFull: number;
  /** Packet counter deltas of ctop's rules in the window, by rule comment. */
  packetsByComment: Record<string, number>;
  /** Entries per "proto/port" at the end of the window; null without a census. */
  entriesByPort: Record<string, number> | null;
  /** Entries in the namespace at the start and the end of the window, and the limit. */
  countStart: number;
  countEnd: number;
  max: number;
}

export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE';

/** The fraction by which the exempted traffic's new entries must fall ("about zero"). */
const ENTRY_CUT_MIN = 0.95;

export interface TargetSide {
  /** New entries created by requests (original destination port in the target) per second. */
  requestEntriesPerSec: number;
  /** New entries created by replies (original source port in the target, destination not) per second. */
  replyEntriesPerSec: number;
  /** Packets per second through ctop's rules, by "hook field" (e.g. "prerouting dport"). */
  packetsPerSec: Record<string, number>;
  /** Entries on these ports at the end of the window; null without a census. */
  entries: number | null;
}

export interface TargetValidation {
  port: string;
  role: string;
  roleEvidence: string;
  /** the (hook, field) pairs exempted */
  exempted: string[];
  before: TargetSide;
  after: TargetSide;
  /** 1 - after/before of the traffic's new entries, both directions; null without entries before */
  entryCut: number | null;
  /** Packets the notrack rules exempted in the after window (proof they match). */
  untrackedPackets: number;
  verdict: Verdict;
  problems: string[];
}

export interface NamespaceSide {
  insertsPerSec: number;
  /** change of the entry count over the window, per second */
  entriesSlopePerSec: number;
  countEnd: number;
  fill: number;
}

export interface Validation {
  verdict: Verdict;
  targets: TargetValidation[];
  namespace: {
    before: NamespaceSide;
    after: NamespaceSide;
    /** share of the namespace's new entries the exempted traffic created before: the cut advise predicts */
    predictedCut: number | null;
    /** 1 - after/before of the namespace's insert rate */
    observedCut: number | null;
    problems: string[];
  };
  notes: string[];
}

function perSec(n: number, ms: number): number {
  return Math.round((n * 1000 * 100) / Math.max(1, ms)) / 100;
}

const dirKey = (d: Pick<Direction, 'hook' | 'field'>) => `${d.hook} ${d.field}`;

const L4_NUM = { tcp: 6, udp: 17 } as const;

/** New entries of t's traffic in a window: by requests (port rows, exact) and by replies (tuple rows). */
function entryCounts(t: NotrackTarget, w: ValidationWindow): { requests: number; replies: number } {
  const requests = rowsOf(t, w.ports).reduce((a, r) => a + r.inserts, 0);
  let replies = 0;
  for (const x of w.tuples) if (x.protoNum === L4_NUM[t.proto] && covers(t, x.sport) && !covers(t, x.dport)) replies += x.inserts;
  return { requests, replies };
}

function side(t: NotrackTarget, w: ValidationWindow): TargetSide {
  const e = entryCounts(t, w);
  let entries: number | null = null;
  if (w.entriesByPort) {
    entries = 0;
    for (const [k, v] of Object.entries(w.entriesByPort)) {
      const [p, port] = k.split('/');
      if (p === t.proto && covers(t, Number(port))) entries += v;
    }
  }
  return {
    requestEntriesPerSec: perSec(e.requests, w.durationMs),
    replyEntriesPerSec: perSec(e.replies, w.durationMs),
    packetsPerSec: Object.fromEntries(ALL_DIRECTIONS.map((d) => [dirKey(d), perSec(w.packetsByComment[ruleComment(t, d)] ?? 0, w.durationMs)])),
    entries,
  };
}

function nsSide(w: ValidationWindow): NamespaceSide {
  const inserts = w.ports.reduce((a, p) => a + p.inserts, 0);
  return {
    insertsPerSec: perSec(inserts, w.durationMs),
    entriesSlopePerSec: perSec(w.countEnd - w.countStart, w.durationMs),
    countEnd: w.countEnd,
    fill: w.max > 0 ? round(w.countEnd / w.max, 4) : 0,
  };
}

/**
 * The role(s) whose directions would exempt what the before window showed:
 * the kernel's role counts where the tier has them, else the smallest role
 * covering every direction that carried packets.
 */
export function suggestRoles(t: NotrackTarget, before: ValidationWindow): TrafficRole[] {
  const counts = sumRoleCounts(rowsOf(t, before.ports));
  const r = resolveRoles(counts, 'auto');
  if (r.inferred) return r.roles;
  const busy = ALL_DIRECTIONS.filter((d) => (before.packetsByComment[ruleComment(t, d)] ?? 0) > 0);
  for (const role of ['server', 'client', 'forward', 'local'] as const) {
    const ds = directions([role]);
    if (busy.every((d) => ds.includes(d))) return [role];
  }
  return ['local'];
}

/**
 * @param retry how to run validate again with other roles (the command
 *   line without --role), for the advice in a FAIL
 */
export function validate(targets: (NotrackTarget & { evidence?: RoleEvidence })[], before: ValidationWindow, after: ValidationWindow, retry = 'ctop validate'): Validation {
  const notes: string[] = [];
  if (before.tupleMapFull > 0 || after.tupleMapFull > 0) notes.push(`the tuple map was full (${before.tupleMapFull + after.tupleMapFull} inserts not recorded per tuple): entries created by replies may be undercounted; raise --max-tuples`);
  const results = targets.map((t): TargetValidation => {
    const key = portText(t);
    const exempt = directions(t.roles);
    const b = side(t, before);
    const a = side(t, after);
    const eb = entryCounts(t, before);
    const ea = entryCounts(t, after);
    const beforeRate = perSec(eb.requests + eb.replies, before.durationMs);
    const afterRate = perSec(ea.requests + ea.replies, after.durationMs);
    const packetsBefore = ALL_DIRECTIONS.reduce((s, d) => s + (before.packetsByComment[ruleComment(t, d)] ?? 0), 0);
    const untrackedPackets = exempt.reduce((s, d) => s + (after.packetsByComment[ruleComment(t, d)] ?? 0), 0);
    const problems: string[] = [];
    let verdict: Verdict = 'PASS';
    const entryCut = beforeRate > 0 ? round(1 - afterRate / beforeRate, 4) : null;
    if (eb.requests + eb.replies === 0 || packetsBefore === 0) {
      verdict = 'INCONCLUSIVE';
      problems.push(
        packetsBefore === 0
          ? `no packets on ${key} before the change: nothing to compare; run validate while the traffic flows`
          : `no new entries on ${key} before the change (its flows are older than the window, or already untracked): nothing to prove`,
      );
    } else {
      const tracked = (field: 'dport' | 'sport') =>
        ALL_DIRECTIONS.filter((d) => d.field === field && !exempt.includes(d) && (after.packetsByComment[ruleComment(t, d)] ?? 0) > 0).map((d) => `${d.chain} ${d.field} (${d.what}: ${after.packetsByComment[ruleComment(t, d)]} packets, not exempted)`);
      if (entryCut !== null && entryCut < ENTRY_CUT_MIN) {
        verdict = 'FAIL';
        const suggested = suggestRoles(t, before);
        const fix = `${retry} --role ${suggested.length === 1 ? suggested[0] : 'auto'}`;
        if (perSec(ea.requests, after.durationMs) > (1 - ENTRY_CUT_MIN) * beforeRate) {
          const where = tracked('dport');
          problems.push(`requests still create entries (${perSec(ea.requests, after.durationMs)}/s with destination port ${key})${where.length ? `: ${where.join('; ')}` : ''}; the traffic plays another role than ${t.roles.join('+')}: run \`${fix}\``);
        }
        if (perSec(ea.replies, after.durationMs) > (1 - ENTRY_CUT_MIN) * beforeRate) {
          const where = tracked('sport');
          problems.push(`replies still create entries (${perSec(ea.replies, after.durationMs)}/s with source port ${key}, the one-way NOTRACK trap)${where.length ? `: ${where.join('; ')}` : ''}; exempt both directions: run \`${fix}\``);
        }
        if (problems.length === 0) problems.push(`new entries fell by only ${Math.round(entryCut * 100)} % (needs ${ENTRY_CUT_MIN * 100} %)`);
      }
      if (untrackedPackets === 0) {
        verdict = 'FAIL';
        problems.push('the notrack rules matched no packet in the window: the role is the wrong way round, or the traffic stopped');
      }
      const stopped = ALL_DIRECTIONS.filter((d) => (before.packetsByComment[ruleComment(t, d)] ?? 0) > 0 && (after.packetsByComment[ruleComment(t, d)] ?? 0) === 0);
      if (stopped.length > 0) {
        verdict = 'FAIL';
        problems.push(`traffic stopped after the change (${stopped.map((d) => `${d.chain} ${d.field}`).join(', ')} carried packets before, none after): check filter rules that need conntrack (ct state) for these ports`);
      }
    }
    return {
      port: key,
      role: t.roles.join('+'),
      roleEvidence: t.evidence?.evidence ?? '',
      exempted: exempt.map(dirKey),
      before: b,
      after: a,
      entryCut,
      untrackedPackets,
      verdict,
      problems,
    };
  });
  const nb = nsSide(before);
  const na = nsSide(after);
  const serviceBefore = targets.reduce((s, t) => {
    const e = entryCounts(t, before);
    return s + e.requests + e.replies;
  }, 0);
  // reply-created entries are in the port rows too (under their original destination port)
  const nsInsertsBefore = before.ports.reduce((a, p) => a + p.inserts, 0);
  const predictedCut = nsInsertsBefore > 0 ? round(Math.min(1, serviceBefore / nsInsertsBefore), 4) : null;
  const observedCut = nb.insertsPerSec > 0 ? round(1 - na.insertsPerSec / nb.insertsPerSec, 4) : null;
  const nsProblems: string[] = [];
  // Other traffic in the namespace moves between the windows: allow it 10 % of the prediction and 5 points.
  if (predictedCut !== null && observedCut !== null && results.every((r) => r.verdict === 'PASS') && observedCut < predictedCut * 0.9 - 0.05) {
    nsProblems.push(
      `the namespace's insert rate fell by ${Math.round(observedCut * 100)} %, but the exempted traffic made ${Math.round(predictedCut * 100)} % of its new entries: other traffic grew between the windows, or something else creates entries; measure again`,
    );
  }
  const all = results.map((r) => r.verdict);
  const verdict: Verdict = nsProblems.length > 0 || all.includes('FAIL') ? 'FAIL' : all.includes('INCONCLUSIVE') ? 'INCONCLUSIVE' : 'PASS';
  return { verdict, targets: results, namespace: { before: nb, after: na, predictedCut, observedCut, problems: nsProblems }, notes };
}

/** Packet counters of ctop's rules by comment, from `nft -j list table inet ctop_notrack`. */
export function countersByComment(json: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  const items = (json as { nftables?: unknown[] } | null)?.nftables;
  if (!Array.isArray(items)) return out;
  for (const item of items) {
    const rule = (item as { rule?: { comment?: unknown; expr?: unknown[] } }).rule;
    if (!rule || typeof rule.comment !== 'string' || !Array.isArray(rule.expr)) continue;
    for (const e of rule.expr) {
      const c = (e as { counter?: { packets?: unknown } }).counter;
      if (c && typeof c.packets === 'number') out[rule.comment] = (out[rule.comment] ?? 0) + c.packets;
    }
  }
  return out;
}

/** b - a per key (counters are cumulative). */
export function counterDelta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(0, v - (a[k] ?? 0));
  return out;
}
