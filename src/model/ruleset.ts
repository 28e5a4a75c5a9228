/**
 * What in a firewall ruleset keeps connection tracking on in a network
 * namespace: the vocabulary shared by the nft JSON reader (rulesetNft.ts) and
 * the iptables-save reader (rulesetIptables.ts). Pure: source/ruleset.ts runs
 * the commands and hands their output to those readers.
 *
 * Kernel fact behind it: conntrack's hooks are registered per netns only
 * while some user holds a reference (nf_ct_netns_get()). nft's ct, ct count,
 * ct helper/timeout/expectation, nat, synproxy and flow-offload expressions
 * take one when the rule is added, and so do the xt matches/targets state,
 * conntrack, connlimit, connbytes, connlabel, connmark, helper, cluster, CT,
 * CONNMARK, CONNSECMARK, SYNPROXY and the NAT targets. `notrack` and
 * `-j CT --notrack` take none: they exempt packets instead.
 */

export type ConntrackUserKind =
  | 'ct-match'
  | 'nat'
  | 'helper'
  | 'xt-conntrack'
  | 'connmark'
  | 'flowtable'
  | 'notrack';

export interface ConntrackUser {
  source: 'nft' | 'iptables-legacy' | 'ip6tables-legacy';
  family: string;
  table: string;
  /** '*' for table-level or object-level users (a *nat table, a ct helper object). */
  chain: string;
  /** nft rule handle; absent for chains, objects and iptables-legacy rules. */
  handle?: number;
  kind: ConntrackUserKind;
  /** Short human text, e.g. "ct state established,related accept" or "-m conntrack --ctstate NEW". */
  detail: string;
  /** The protocol and ports the rule is limited to; absent when it matches every port. */
  scope?: PortScope;
  /** The rule's verdict (accept, drop, reject, return, jump NAME); absent when it has none (counter, log, a target). */
  verdict?: string;
}

/** Inclusive port range. */
export type PortRange = [number, number];

export interface PortScope {
  /** tcp, udp, sctp, ...; absent for any protocol (nft `th`, or no -p). */
  proto?: string;
  dports?: PortRange[];
  sports?: PortRange[];
  /** A port match was negated or not understood: treat the rule as covering every port. */
  unsure?: boolean;
}

/** A base chain: where packets enter a hook, with its policy. */
export interface BaseChain {
  source: 'nft' | 'iptables-legacy' | 'ip6tables-legacy';
  family: string;
  table: string;
  chain: string;
  /** nft hook name (input, output, prerouting, ...) in lower case. */
  hook: string;
  type: string;
  policy: string;
}

/** What the readers made of one namespace's ruleset (source/ruleset.ts reads it). */
export interface RulesetReading {
  users: ConntrackUser[];
  /** Base chains and their policies (a drop policy needs an accept for untracked packets). */
  chains: BaseChain[];
  /** The commands whose output was analysed. */
  sources: string[];
  errors: string[];
}

const MAX_DETAIL = 120;

export function clip(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > MAX_DETAIL ? `${t.slice(0, MAX_DETAIL - 1)}…` : t;
}

/** iptables matches that need conntrack, by name (as `-m NAME` and as nft's xt view). */
export const IPT_MATCH_KINDS: Record<string, ConntrackUserKind> = {
  state: 'xt-conntrack',
  conntrack: 'xt-conntrack',
  connlimit: 'xt-conntrack',
  connbytes: 'xt-conntrack',
  connlabel: 'xt-conntrack',
  cluster: 'xt-conntrack',
  helper: 'helper',
  connmark: 'connmark',
};

/**
 * xt extension names as nft prints them for iptables-nft rules
 * ({"xt": {"type": "match"|"target", "name": ...}}). nft's JSON carries the
 * name only, never the options, so `-m state` shows as "conntrack" (iptables
 * maps it onto the conntrack match) and `-j CT --notrack` cannot be told
 * apart from `-j CT --helper ftp`.
 */
export const XT_KINDS: Record<string, ConntrackUserKind> = {
  ...IPT_MATCH_KINDS,
  CONNMARK: 'connmark',
  CONNSECMARK: 'xt-conntrack',
  SYNPROXY: 'xt-conntrack',
  // Conservative: with its options hidden, a CT target may hold a reference.
  CT: 'xt-conntrack',
  NOTRACK: 'notrack',
  SNAT: 'nat',
  DNAT: 'nat',
  MASQUERADE: 'nat',
  REDIRECT: 'nat',
  NETMAP: 'nat',
};

/** Whether anything listed holds conntrack on; notrack rules only exempt packets. */
export function keepsConntrackOn(users: ConntrackUser[]): boolean {
  return users.some((u) => u.kind !== 'notrack');
}

/** One line per user: "nft inet filter input (handle 4): ct-match: ct state established,related accept". */
export function summarize(users: ConntrackUser[]): string[] {
  return users.map((u) => {
    const handle = u.handle !== undefined ? ` (handle ${u.handle})` : '';
    return `${u.source} ${u.family} ${u.table} ${u.chain}${handle}: ${u.kind}: ${u.detail}`;
  });
}
