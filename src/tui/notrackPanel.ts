/**
 * The live screen's NOTRACK panel and `n` overlay: the same planner as
 * `ctop advise` (advise/report.ts namespaceNotrack, --role auto, top 5) for
 * the namespace with the most new entries in the window, so the candidates,
 * their roles, safety flags and rules are advise's; the rules are the ones
 * `ctop notrack apply` loads. From the overlay the operator runs the guarded
 * apply on the selected candidate: a dry run first (the script checked with
 * `nft -c`), then the change with its rollback countdown in the header,
 * confirm or revert. Pure: the I/O is behind NotrackActions (commands/top.ts).
 */
import type { HelperPresence } from '../model/conntrack.js';
import type { SnapshotV1 } from '../model/snapshot.js';
import { namespaceNotrack, type NamespaceInput } from '../advise/report.js';
import type { Candidate, NotrackAdvice } from '../advise/notrack.js';
import { portText } from '../advise/rules.js';
import { esc, fit, fitRight, rate } from './text.js';
import { percent } from '../util/text.js';

/** Candidates per namespace, as `ctop advise` (its --top default). */
const LIVE_TOP = 5;

/** What the guarded change from the screen is doing. */
export type NotrackStatus =
  | { kind: 'pending'; port: string; secondsLeft: number }
  | { kind: 'confirmed'; port: string }
  | { kind: 'rolled back'; port: string }
  | { kind: 'reverted' }
  | { kind: 'error'; message: string };

/** The I/O the panel's actions need, given by the command (none for a replay). */
export interface NotrackActions {
  /** The namespace's ruleset and sysctls (read by the command, cached). */
  namespace(inode: number): NamespaceInput | undefined;
  helpers: HelperPresence[];
  /** `nft -c` of the script in the namespace: null when it passes, else why not. */
  check(inode: number, script: string): string | null;
  /** The guarded change (backup, watchdog, atomic load); resolves once loaded. */
  apply(inode: number, c: Candidate): Promise<void>;
  confirm(): Promise<void>;
  revert(): Promise<void>;
  status(): NotrackStatus | null;
}

export interface LiveNotrack {
  inode: number;
  name: string;
  advice: NotrackAdvice;
}

/** The namespace with the most new entries in the window, and advise's candidates for it. */
export function liveNotrack(s: SnapshotV1 | undefined, actions: NotrackActions | undefined): LiveNotrack | null {
  if (!s || s.totals.inserts === null) return null;
  const ns = [...s.namespaces].sort((a, b) => (b.inserts ?? 0) - (a.inserts ?? 0) || a.inode - b.inode)[0];
  if (!ns || !(ns.inserts ?? 0)) return null;
  const unread: NamespaceInput = {
    inode: ns.inode,
    ruleset: { users: [], chains: [], errors: ['the ruleset was not read (a replay): no safety check'] },
    helperAutoAssign: null,
    timeoutsS: {},
    errors: [],
  };
  const input = actions?.namespace(ns.inode) ?? unread;
  return { inode: ns.inode, name: ns.name, advice: namespaceNotrack(s, ns.inode, input, { helpers: actions?.helpers ?? [] }, 'auto', LIVE_TOP) };
}

/** The panel: one line per candidate (port or range, role, share, inserts/s, safe). */
export function notrackLines(live: LiveNotrack | null, s: SnapshotV1 | undefined, width: number, height: number): string[] {
  if (!s) return [];
  if (s.totals.inserts === null) return [fit('needs per-port inserts (a BPF tier)', width)].map(esc);
  if (!live || live.advice.candidates.length === 0) return [fit('no new tcp/udp flows in this window', width)].map(esc);
  const out = live.advice.candidates.map((c, i) =>
    fit(`${i + 1} ${portText(c)} ${c.role}${c.safe ? '' : ' UNSAFE'}`, width - 16) + fitRight(percent(c.insertShare), 8) + fitRight(rate(c.insertsPerSec), 8),
  );
  out.push(fit(`in ${live.name} · n: rules, apply`, width));
  return out.slice(0, Math.max(0, height)).map(esc);
}

/** The header's note on a change made from the screen. */
export function notrackStatusText(st: NotrackStatus | null): string {
  if (!st) return '';
  switch (st.kind) {
    case 'pending':
      return `NOTRACK ${st.port} rolls back in ${Math.max(0, Math.ceil(st.secondsLeft))}s: c confirm, r revert`;
    case 'confirmed':
      return `NOTRACK ${st.port} confirmed`;
    case 'rolled back':
      return `NOTRACK ${st.port} rolled back`;
    case 'reverted':
      return 'NOTRACK reverted';
    case 'error':
      return `NOTRACK: ${st.message}`;
  }
}

/** What the overlay shows below the candidate list. */
export type OverlayStage = 'rules' | 'dryRun';

/**
 * The `n` overlay: the candidates (↑↓ select), the selected one's role with
 * its evidence, its flags and its rules in three dialects; on `a`, the dry
 * run's verdict; the keys.
 */
export function notrackOverlayLines(live: LiveNotrack | null, selected: number, stage: OverlayStage, dryRun: string | null, status: NotrackStatus | null, canApply: boolean): string[] {
  const out: string[] = [];
  if (!live || live.advice.candidates.length === 0) return ['No new tcp/udp flows in this window: nothing to rank.', '', 'Esc or n closes.'].map(esc);
  const cands = live.advice.candidates;
  const sel = Math.max(0, Math.min(selected, cands.length - 1));
  out.push(`NOTRACK candidates in ${live.name} (as \`ctop advise --role auto\` ranks them):`);
  for (const [i, c] of cands.entries()) {
    out.push(`${i === sel ? '>' : ' '} ${i + 1}. ${portText(c)}  ${c.role}  ${percent(c.insertShare)} of new entries  ${c.safe ? 'safe' : 'UNSAFE'}`);
  }
  out.push(canApply ? '↑↓ select  a dry run, then apply  c confirm  r revert  Esc or n closes' : 'Esc or n closes (apply needs the live kernel, not a replay)');
  const st = notrackStatusText(status);
  if (st) out.push(st);
  const c = cands[sel]!;
  out.push('', `${portText(c)}: role ${c.role} (${c.roleEvidence.evidence})`);
  for (const f of c.flags) if (!f.reason.startsWith('role not measured')) out.push(`  ${f.severity}: ${f.reason}${f.rule ? ` [${f.rule}]` : ''}`);
  if (stage === 'dryRun') {
    out.push('', dryRun === null ? 'Dry run: the script below passed `nft -c`. a again applies it (rolls back unless confirmed).' : `Dry run: nft -c refused it: ${dryRun}`);
  }
  out.push('', 'nft (what ctop notrack apply loads):', ...c.rules.nft.trimEnd().split('\n').map((l) => `  ${l}`));
  out.push('iptables-nft:', ...c.rules.iptablesNft.map((l) => `  ${l}`));
  out.push('iptables-legacy:', ...c.rules.iptablesLegacy.map((l) => `  ${l}`));
  if (c.untrackedAccepts.length > 0) out.push('accept untracked packets in your drop-policy chains:', ...c.untrackedAccepts.map((x) => `  ${x.command}`));
  return out.map(esc);
}
