/**
 * "What keeps conntrack on": the rules and kernel features that need it, so
 * an operator can judge whether turning it off is possible, and the warning
 * when conntrack is active although nothing in the ruleset uses it. Pure.
 *
 * Kernel fact: conntrack's hooks are registered per namespace while a user
 * holds a reference (see model/ruleset.ts). With no such rule, entries still
 * appear when something else took a reference: on some systems merely
 * listing rules with `iptables -L` loads a table module whose dependencies
 * (e.g. iptable_nat) pull conntrack in, and a rule that was deleted leaves
 * entries until they time out.
 */
import { keepsConntrackOn, summarize, type ConntrackUser, type ConntrackUserKind } from '../model/ruleset.js';
import type { HelperPresence } from '../model/conntrack.js';

export interface KeepsOnInput {
  users: ConntrackUser[];
  /** Entries or statistics above zero in this namespace. */
  active: boolean;
  helpers: HelperPresence[];
  /** Netfilter modules present (built in or loaded); only those /sys/module lists. */
  modules?: { name: string; how: string }[];
  /** What could not be read (the verdict is then incomplete). */
  errors: string[];
}

export interface KeepsOnReport {
  keptOnByRules: boolean;
  /** Counts of rules per kind, e.g. { "ct-match": 2, nat: 1 }. */
  byKind: Partial<Record<ConntrackUserKind, number>>;
  rules: string[];
  features: string[];
  warning: string | null;
}

export function keepsOn(i: KeepsOnInput): KeepsOnReport {
  const byKind: Partial<Record<ConntrackUserKind, number>> = {};
  for (const u of i.users) byKind[u.kind] = (byKind[u.kind] ?? 0) + 1;
  const kept = keepsConntrackOn(i.users);
  const features = [
    ...(i.modules ?? []).map((m) => `${m.name} (${m.how})`),
    ...i.helpers.map((h) => `helper ${h.name} (${h.how}; ports ${h.ports.map((p) => `${p.proto}/${p.port}`).join(', ')})`),
  ];
  let warning: string | null = null;
  if (i.active && !kept && i.errors.length === 0) {
    warning =
      'conntrack is active but nothing in the ruleset uses it: something else took a reference (listing rules with `iptables -L` can load table modules that pull conntrack in on some systems), or entries remain from rules that were removed; without a user the entries time out and conntrack could stay off';
  }
  return { keptOnByRules: kept, byKind, rules: summarize(i.users.filter((u) => u.kind !== 'notrack')), features, warning };
}
