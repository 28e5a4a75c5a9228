/**
 * Before/after comparison for `ctop validate`: the same ports measured in a
 * window with counting-only rules and in a window with the notrack rules.
 * Pure: windows in, verdict out.
 */
import { directions, ruleComment, type NotrackTarget } from './rules.js';

export interface ValidationWindow {
  durationMs: number;
  /** Inserts per "proto/port" in the window (from the BPF counters). */
  insertsByPort: Record<string, number>;
  /** Packet counter deltas of ctop's rules in the window, by rule comment. */
  packetsByComment: Record<string, number>;
  /** Entries per "proto/port" at the end of the window; null without a census. */
  entriesByPort: Record<string, number> | null;
  /** Entries in the namespace and the limit at the end of the window. */
  count: number;
  max: number;
}

export interface PortSide {
  insertsPerSec: number;
  /** Packets per second matched by ctop's rules, both directions. */
  packetsPerSec: number;
  /** Requests and replies separately (per second), to see both directions flow. */
  requestsPerSec: number;
  repliesPerSec: number;
  entries: number | null;
}

export interface PortValidation {
  port: string;
  before: PortSide;
  after: PortSide;
  /** Packets the notrack rules exempted in the after window (proof they match). */
  untrackedPackets: number;
  /** Entries from before the change still in the table at the end (they time out). */
  leftoverEntries: number | null;
  ok: boolean;
  problems: string[];
}

export interface Validation {
  ports: PortValidation[];
  fill: { before: number; after: number; countBefore: number; countAfter: number };
  ok: boolean;
}

function perSec(n: number, ms: number): number {
  return Math.round((n * 1000 * 100) / Math.max(1, ms)) / 100;
}

function side(t: NotrackTarget, w: ValidationWindow): PortSide {
  const key = `${t.proto}/${t.port}`;
  const [req, rep] = directions(t.role).map((d) => w.packetsByComment[ruleComment(t, d.field)] ?? 0) as [number, number];
  return {
    insertsPerSec: perSec(w.insertsByPort[key] ?? 0, w.durationMs),
    packetsPerSec: perSec(req + rep, w.durationMs),
    requestsPerSec: perSec(req, w.durationMs),
    repliesPerSec: perSec(rep, w.durationMs),
    entries: w.entriesByPort ? (w.entriesByPort[key] ?? 0) : null,
  };
}

export function validate(targets: NotrackTarget[], before: ValidationWindow, after: ValidationWindow): Validation {
  const ports = targets.map((t): PortValidation => {
    const key = `${t.proto}/${t.port}`;
    const b = side(t, before);
    const a = side(t, after);
    const untrackedPackets = directions(t.role).reduce((s, d) => s + (after.packetsByComment[ruleComment(t, d.field)] ?? 0), 0);
    const problems: string[] = [];
    if ((after.insertsByPort[key] ?? 0) > 0) problems.push(`${after.insertsByPort[key]} inserts after the change: something still tracks this port (the other direction, another family, or a rule before raw priority)`);
    if (untrackedPackets === 0) problems.push('the notrack rules matched no packet: no traffic on this port in the window, or the role is the wrong way round');
    if (b.packetsPerSec > 0 && a.packetsPerSec === 0) problems.push('traffic stopped after the change: check filter rules that need conntrack (ct state) for this port');
    return {
      port: key,
      before: b,
      after: a,
      untrackedPackets,
      leftoverEntries: a.entries,
      ok: problems.length === 0,
      problems,
    };
  });
  const fill = (w: ValidationWindow) => (w.max > 0 ? Math.round((w.count / w.max) * 10000) / 10000 : 0);
  return {
    ports,
    fill: { before: fill(before), after: fill(after), countBefore: before.count, countAfter: after.count },
    ok: ports.every((p) => p.ok),
  };
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
