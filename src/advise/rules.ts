/**
 * NOTRACK rules in three dialects, symmetric over both directions of a flow.
 * Pure: text only; `ctop notrack apply` checks and loads the nft form, tests
 * run every form through `nft -c` / `iptables-restore --test`.
 *
 * Why both directions: conntrack creates an entry for whichever packet of a
 * flow it sees first without a notrack mark. Exempting only the requests still
 * leaves the replies to be tracked (as new "connections" in the reverse
 * direction), so the table keeps filling.
 *   server role (a local service on PORT): requests arrive with dport PORT
 *     (PREROUTING), replies leave with sport PORT (OUTPUT);
 *   client role (this host talks to remote PORT): requests leave with dport
 *     PORT (OUTPUT), replies arrive with sport PORT (PREROUTING).
 * The raw table (nft priority raw, -300) runs before conntrack (-200).
 */

import type { L4 } from '../model/conntrack.js';
import { cleanText, isPlainRuleName } from '../util/sanitize.js';

export type Role = 'server' | 'client';

export interface NotrackTarget {
  proto: L4;
  port: number;
  role: Role;
}

/** ctop's own nft table: apply replaces it, revert deletes it, nothing else is touched. */
export const CTOP_TABLE_FAMILY = 'inet';
export const CTOP_TABLE = 'ctop_notrack';

interface DirectionMatch {
  /** netfilter hook (nft name) and iptables chain of the raw table */
  hook: 'prerouting' | 'output';
  chain: 'PREROUTING' | 'OUTPUT';
  field: 'dport' | 'sport';
}

/** The two (hook, port field) pairs that cover a flow for a role. */
export function directions(role: Role): DirectionMatch[] {
  return role === 'server'
    ? [
        { hook: 'prerouting', chain: 'PREROUTING', field: 'dport' },
        { hook: 'output', chain: 'OUTPUT', field: 'sport' },
      ]
    : [
        { hook: 'output', chain: 'OUTPUT', field: 'dport' },
        { hook: 'prerouting', chain: 'PREROUTING', field: 'sport' },
      ];
}

/** The comment each nft rule carries, so validate can find its counter. */
export function ruleComment(t: NotrackTarget, field: 'dport' | 'sport'): string {
  return `ctop ${t.role} ${t.proto}/${t.port} ${field}`;
}

function sortTargets(ts: NotrackTarget[]): NotrackTarget[] {
  return [...ts].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port || a.role.localeCompare(b.role));
}

/**
 * The nft script that (re)defines ctop's table with exactly these targets, in
 * one transaction: declaring the table first makes `delete table` succeed
 * whether or not it existed, and `nft -f` commits the whole file or nothing.
 * Both address families are covered (an inet table). Counters prove matches.
 */
export function nftScript(targets: NotrackTarget[], opts: { countOnly?: boolean } = {}): string {
  // countOnly: the same matches with a counter and no notrack, for measuring
  // the traffic before the change (a counter changes no verdict and takes no
  // conntrack reference).
  const action = opts.countOnly ? 'counter' : 'counter notrack';
  const byHook: Record<'prerouting' | 'output', string[]> = { prerouting: [], output: [] };
  for (const t of sortTargets(targets)) {
    for (const d of directions(t.role)) {
      byHook[d.hook].push(`    ${t.proto} ${d.field} ${t.port} ${action} comment "${ruleComment(t, d.field)}"`);
    }
  }
  const chain = (hook: 'prerouting' | 'output') =>
    [`  chain ${hook} {`, `    type filter hook ${hook} priority raw; policy accept;`, ...byHook[hook], '  }'].join('\n');
  return [
    `table ${CTOP_TABLE_FAMILY} ${CTOP_TABLE}`,
    `delete table ${CTOP_TABLE_FAMILY} ${CTOP_TABLE}`,
    `table ${CTOP_TABLE_FAMILY} ${CTOP_TABLE} {`,
    chain('prerouting'),
    chain('output'),
    '}',
    '',
  ].join('\n');
}

/** The script that removes ctop's table (and only it), whether or not it exists. */
export function nftRevertScript(): string {
  return `table ${CTOP_TABLE_FAMILY} ${CTOP_TABLE}\ndelete table ${CTOP_TABLE_FAMILY} ${CTOP_TABLE}\n`;
}

/** iptables rule specs (after -A CHAIN) for the raw table. */
function iptablesSpecs(t: NotrackTarget): { chain: string; spec: string }[] {
  return directions(t.role).map((d) => ({ chain: d.chain, spec: `-p ${t.proto} -m ${t.proto} --${d.field} ${t.port} -j CT --notrack` }));
}

/**
 * An iptables-restore file for the raw table; load it with `--noflush` so
 * the table's other rules stay. Same text for iptables-legacy-restore and
 * iptables-nft-restore, and for the ip6 variants.
 */
export function iptablesRestore(targets: NotrackTarget[]): string {
  const lines = ['*raw'];
  for (const t of sortTargets(targets)) for (const r of iptablesSpecs(t)) lines.push(`-A ${r.chain} ${r.spec}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** Commands for one backend: iptables-legacy or iptables-nft (and their ip6 twins). */
export function iptablesCommands(targets: NotrackTarget[], backend: 'legacy' | 'nft'): string[] {
  const out: string[] = [];
  for (const bin of [`iptables-${backend}`, `ip6tables-${backend}`]) {
    for (const t of sortTargets(targets)) for (const r of iptablesSpecs(t)) out.push(`${bin} -t raw -A ${r.chain} ${r.spec}`);
  }
  return out;
}

/** The accept an input base chain with a drop policy needs once packets are untracked. */
export interface UntrackedAccept {
  /** Where: the user's own chain (ctop never edits it). */
  source: 'nft' | 'iptables-legacy' | 'ip6tables-legacy';
  table: string;
  chain: string;
  family: string;
  command: string;
}

/**
 * Packets that arrive untracked match neither `ct state new` nor
 * `established`: with a drop policy they are dropped unless something accepts
 * them. Incoming packets carry dport PORT (server) or sport PORT (client);
 * outgoing ones the other field.
 */
export function untrackedAccept(
  t: NotrackTarget,
  chain: { source: UntrackedAccept['source']; family: string; table: string; chain: string },
  direction: 'in' | 'out',
): UntrackedAccept {
  return onlyPlainNames(buildUntrackedAccept(t, chain, direction));
}

/**
 * Table and chain names come from the ruleset, which other users (a tenant's
 * namespace) write: a command is suggested only when each is a plain word for
 * nft and the shell alike; otherwise ctop says where to add the accept.
 */
function onlyPlainNames(a: UntrackedAccept): UntrackedAccept {
  const odd = [a.table, a.chain].find((n) => !isPlainRuleName(n));
  if (odd === undefined) return a;
  return { ...a, command: `(the name ${JSON.stringify(cleanText(odd, 80))} cannot be written safely in a command: add an accept for untracked packets to ${a.family} table ${cleanText(a.table, 80)} chain ${cleanText(a.chain, 80)} by hand)` };
}

function buildUntrackedAccept(
  t: NotrackTarget,
  chain: { source: UntrackedAccept['source']; family: string; table: string; chain: string },
  direction: 'in' | 'out',
): UntrackedAccept {
  const incoming = t.role === 'server' ? 'dport' : 'sport';
  const field = direction === 'in' ? incoming : incoming === 'dport' ? 'sport' : 'dport';
  // A built-in chain of an iptables-nft table (ip/ip6 filter INPUT/OUTPUT): keep it in iptables syntax.
  if (chain.source === 'nft' && (chain.family === 'ip' || chain.family === 'ip6') && /^(INPUT|OUTPUT|FORWARD)$/.test(chain.chain)) {
    const bin = chain.family === 'ip6' ? 'ip6tables-nft' : 'iptables-nft';
    return {
      ...chain,
      command: `${bin} -t ${chain.table} -I ${chain.chain} 1 -p ${t.proto} -m ${t.proto} --${field} ${t.port} -m conntrack --ctstate UNTRACKED -j ACCEPT`,
    };
  }
  if (chain.source === 'nft') {
    return {
      ...chain,
      command: `nft insert rule ${chain.family} ${chain.table} ${chain.chain} ${t.proto} ${field} ${t.port} ct state untracked accept`,
    };
  }
  const bin = chain.source === 'ip6tables-legacy' ? 'ip6tables-legacy' : 'iptables-legacy';
  return {
    ...chain,
    command: `${bin} -t ${chain.table} -I ${chain.chain} 1 -p ${t.proto} -m ${t.proto} --${field} ${t.port} -m conntrack --ctstate UNTRACKED -j ACCEPT`,
  };
}
