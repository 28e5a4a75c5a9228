/**
 * NOTRACK rules in three dialects (nft in ctop's own table, iptables-nft,
 * iptables-legacy, each with its ip6tables twin), covering both directions of
 * the exempted traffic for the role(s) it plays in the namespace. Pure: text
 * only; `ctop notrack apply` checks and loads the nft form, tests run every
 * form through `nft -c` / `iptables-restore --test`. The one rule writer:
 * advise, apply, validate and the live screen all print these.
 *
 * Why both directions: conntrack creates an entry for whichever packet of a
 * flow it sees first without a notrack mark. Exempting only the requests
 * leaves the replies to be tracked (as new "connections" in the reverse
 * direction, original source port = the service port), so the table keeps
 * filling. Where each direction passes the raw table (priority -300, before
 * conntrack at -200), P the service port:
 *   server   requests arrive: PREROUTING dport P; replies leave: OUTPUT sport P
 *   client   requests leave: OUTPUT dport P; replies arrive: PREROUTING sport P
 *   local    both ends in the namespace: a packet passes OUTPUT and then (over
 *            loopback) PREROUTING, so all four matches (the union of server
 *            and client)
 *   forward  neither end local: requests and replies both enter through
 *            PREROUTING (dport P, then sport P); a forwarded packet never
 *            passes OUTPUT
 * A port seen in several roles gets the union of their matches.
 */
import type { L4 } from '../model/conntrack.js';
import { TRAFFIC_ROLES, type TrafficRole } from '../model/roles.js';
import { cleanText, isPlainRuleName } from '../util/sanitize.js';

export type { L4 };
/** `auto`: the role the kernel showed for the port (src/advise/roles.ts). */
export { ROLE_CHOICES, type RoleChoice } from '../model/roles.js';

/** A port or an inclusive port range of one protocol, exempted for these roles. */
export interface NotrackTarget {
  proto: L4;
  port: number;
  /** = port for a single port */
  portEnd: number;
  roles: TrafficRole[];
}

/** ctop's own nft table: apply replaces it, revert deletes it, nothing else is touched. */
export const CTOP_TABLE_FAMILY = 'inet';
export const CTOP_TABLE = 'ctop_notrack';

export type Hook = 'prerouting' | 'output';
export type PortField = 'dport' | 'sport';

export interface Direction {
  /** netfilter hook (nft name) and iptables chain of the raw table */
  hook: Hook;
  chain: 'PREROUTING' | 'OUTPUT';
  field: PortField;
  /** what passes there, in words */
  what: string;
}

const PRE_DPORT: Direction = { hook: 'prerouting', chain: 'PREROUTING', field: 'dport', what: 'requests arriving' };
const OUT_SPORT: Direction = { hook: 'output', chain: 'OUTPUT', field: 'sport', what: 'replies leaving' };
const OUT_DPORT: Direction = { hook: 'output', chain: 'OUTPUT', field: 'dport', what: 'requests leaving' };
const PRE_SPORT: Direction = { hook: 'prerouting', chain: 'PREROUTING', field: 'sport', what: 'replies arriving' };
/** Every (hook, field) pair, in the order rules are written. */
export const ALL_DIRECTIONS: readonly Direction[] = [PRE_DPORT, PRE_SPORT, OUT_DPORT, OUT_SPORT];

const ROLE_DIRECTIONS: Record<TrafficRole, Direction[]> = {
  server: [PRE_DPORT, OUT_SPORT],
  client: [OUT_DPORT, PRE_SPORT],
  local: [PRE_DPORT, PRE_SPORT, OUT_DPORT, OUT_SPORT],
  forward: [PRE_DPORT, PRE_SPORT],
};

/** The (hook, field) pairs that cover both directions of the traffic for these roles, in ALL_DIRECTIONS order. */
export function directions(roles: readonly TrafficRole[]): Direction[] {
  const want = new Set(roles.flatMap((r) => ROLE_DIRECTIONS[r]));
  return ALL_DIRECTIONS.filter((d) => want.has(d));
}

/** "udp/5000" or "udp/60000-60100". */
export function portText(t: Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>): string {
  return t.portEnd === t.port ? `${t.proto}/${t.port}` : `${t.proto}/${t.port}-${t.portEnd}`;
}

export function covers(t: Pick<NotrackTarget, 'port' | 'portEnd'>, port: number): boolean {
  return port >= t.port && port <= t.portEnd;
}

/** The comment each nft rule carries, so validate can find its counter. */
export function ruleComment(t: Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>, d: Pick<Direction, 'hook' | 'field'>): string {
  return `ctop ${portText(t)} ${d.hook} ${d.field}`;
}

function sortTargets(ts: NotrackTarget[]): NotrackTarget[] {
  return [...ts].sort((a, b) => a.proto.localeCompare(b.proto) || a.port - b.port || a.portEnd - b.portEnd);
}

function nftPorts(t: NotrackTarget): string {
  return t.portEnd === t.port ? String(t.port) : `${t.port}-${t.portEnd}`;
}

/**
 * What the script does per target:
 *   notrack        the role's directions exempted (what apply loads)
 *   count          every direction counted, nothing exempted: measures the
 *                  traffic before a change (a counter changes no verdict and
 *                  takes no conntrack reference)
 *   notrack+count  the role's directions exempted, the others counted, so
 *                  validate sees the packets a wrong role leaves tracked
 */
export type ScriptMode = 'notrack' | 'count' | 'notrack+count';

/**
 * The nft script that (re)defines ctop's table with exactly these targets, in
 * one transaction: declaring the table first makes `delete table` succeed
 * whether or not it existed, and `nft -f` commits the whole file or nothing.
 * Both address families are covered (an inet table); a range is an nft
 * interval. Counters prove matches.
 */
export function nftScript(targets: NotrackTarget[], mode: ScriptMode = 'notrack'): string {
  const byHook: Record<Hook, string[]> = { prerouting: [], output: [] };
  for (const t of sortTargets(targets)) {
    const exempt = mode === 'count' ? [] : directions(t.roles);
    const listed = mode === 'notrack' ? exempt : ALL_DIRECTIONS;
    for (const d of listed) {
      const action = exempt.includes(d) ? 'counter notrack' : 'counter';
      byHook[d.hook].push(`    ${t.proto} ${d.field} ${nftPorts(t)} ${action} comment "${ruleComment(t, d)}"`);
    }
  }
  const chain = (hook: Hook) => [`  chain ${hook} {`, `    type filter hook ${hook} priority raw; policy accept;`, ...byHook[hook], '  }'].join('\n');
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

function iptablesPorts(t: NotrackTarget): string {
  return t.portEnd === t.port ? String(t.port) : `${t.port}:${t.portEnd}`;
}

/** iptables rule specs (after -A CHAIN) for the raw table. */
function iptablesSpecs(t: NotrackTarget): { chain: string; spec: string }[] {
  return directions(t.roles).map((d) => ({ chain: d.chain, spec: `-p ${t.proto} -m ${t.proto} --${d.field} ${iptablesPorts(t)} -j CT --notrack` }));
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

/** The rules for targets in every dialect, as advise and the live screen print them. */
export interface RuleTexts {
  nft: string;
  iptablesLegacy: string[];
  iptablesNft: string[];
  iptablesRestore: string;
}

export function ruleTexts(targets: NotrackTarget[]): RuleTexts {
  return { nft: nftScript(targets), iptablesLegacy: iptablesCommands(targets, 'legacy'), iptablesNft: iptablesCommands(targets, 'nft'), iptablesRestore: iptablesRestore(targets) };
}

/** The accept a filter base chain with a drop policy needs once packets are untracked. */
export interface UntrackedAccept {
  /** Where: the user's own chain (ctop never edits it). */
  source: 'nft' | 'iptables-legacy' | 'ip6tables-legacy';
  table: string;
  chain: string;
  family: string;
  command: string;
}

export type FilterHook = 'input' | 'output' | 'forward';

/**
 * The port fields of the exempted packets a filter hook sees: input sees
 * what is delivered locally (server requests, client replies), output what
 * local sockets send, forward what is routed through (both directions).
 */
export function fieldsAt(roles: readonly TrafficRole[], hook: FilterHook): PortField[] {
  const out = new Set<PortField>();
  for (const r of roles) {
    if (hook === 'forward') {
      if (r === 'forward') ['dport', 'sport'].forEach((f) => out.add(f as PortField));
      continue;
    }
    if (r === 'local') ['dport', 'sport'].forEach((f) => out.add(f as PortField));
    if (r === 'server') out.add(hook === 'input' ? 'dport' : 'sport');
    if (r === 'client') out.add(hook === 'input' ? 'sport' : 'dport');
  }
  return (['dport', 'sport'] as const).filter((f) => out.has(f));
}

/**
 * Packets that pass untracked match neither `ct state new` nor
 * `established`: with a drop policy they are dropped unless something accepts
 * them. One accept per port field the chain sees (fieldsAt).
 */
export function untrackedAccept(
  t: Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>,
  chain: { source: UntrackedAccept['source']; family: string; table: string; chain: string },
  field: PortField,
): UntrackedAccept {
  return onlyPlainNames(buildUntrackedAccept(t, chain, field));
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
  t: Pick<NotrackTarget, 'proto' | 'port' | 'portEnd'>,
  chain: { source: UntrackedAccept['source']; family: string; table: string; chain: string },
  field: PortField,
): UntrackedAccept {
  const ipt = `-p ${t.proto} -m ${t.proto} --${field} ${t.portEnd === t.port ? t.port : `${t.port}:${t.portEnd}`} -m conntrack --ctstate UNTRACKED -j ACCEPT`;
  // A built-in chain of an iptables-nft table (ip/ip6 filter INPUT/OUTPUT/FORWARD): keep it in iptables syntax.
  if (chain.source === 'nft' && (chain.family === 'ip' || chain.family === 'ip6') && /^(INPUT|OUTPUT|FORWARD)$/.test(chain.chain)) {
    const bin = chain.family === 'ip6' ? 'ip6tables-nft' : 'iptables-nft';
    return { ...chain, command: `${bin} -t ${chain.table} -I ${chain.chain} 1 ${ipt}` };
  }
  if (chain.source === 'nft') {
    const ports = t.portEnd === t.port ? String(t.port) : `${t.port}-${t.portEnd}`;
    return { ...chain, command: `nft insert rule ${chain.family} ${chain.table} ${chain.chain} ${t.proto} ${field} ${ports} ct state untracked accept` };
  }
  const bin = chain.source === 'ip6tables-legacy' ? 'ip6tables-legacy' : 'iptables-legacy';
  return { ...chain, command: `${bin} -t ${chain.table} -I ${chain.chain} 1 ${ipt}` };
}
