/**
 * Explains what in a firewall ruleset keeps connection tracking on in a
 * network namespace. Pure: callers pass in what `nft -j list ruleset` and
 * `iptables-legacy-save` printed (see rulesetProbe.ts for the I/O).
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

type Obj = Record<string, unknown>;

const MAX_DETAIL = 120;
// nft JSON nests a few levels; anything deeper is not a ruleset we understand.
const MAX_DEPTH = 32;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, fallback = '?'): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

function clip(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > MAX_DETAIL ? `${t.slice(0, MAX_DETAIL - 1)}…` : t;
}

/** iptables matches that need conntrack, by name (as `-m NAME` and as nft's xt view). */
const IPT_MATCH_KINDS: Record<string, ConntrackUserKind> = {
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
const XT_KINDS: Record<string, ConntrackUserKind> = {
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

const NAT_STATEMENTS = new Set(['snat', 'dnat', 'masquerade', 'redirect']);

// ---------------------------------------------------------------- nft JSON

/** Collects the kinds a rule's expressions imply, wherever they are nested. */
function collectKinds(node: unknown, found: Set<ConntrackUserKind>, depth: number): void {
  if (depth > MAX_DEPTH) return;
  if (Array.isArray(node)) {
    for (const item of node) collectKinds(item, found, depth + 1);
    return;
  }
  if (!isObj(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'ct' && isObj(value)) found.add('ct-match');
    else if (key === 'ct count' || key === 'ct timeout' || key === 'ct expectation') found.add('ct-match');
    else if (key === 'ct helper') found.add('helper');
    else if (key === 'synproxy') found.add('ct-match');
    else if (NAT_STATEMENTS.has(key)) found.add('nat');
    else if (key === 'notrack') found.add('notrack');
    else if (key === 'flow' && isObj(value)) found.add('flowtable');
    else if (key === 'xt' && isObj(value)) {
      const kind = XT_KINDS[str(value.name, '')];
      if (kind) found.add(kind);
    }
    collectKinds(value, found, depth + 1);
  }
}

const BARE_META = new Set(['iifname', 'oifname', 'iif', 'oif']);
const VERDICTS = new Set(['accept', 'drop', 'continue', 'return', 'jump', 'goto', 'queue', 'reject']);

/** A value or expression in roughly nft's own syntax; '' when unknown. */
function renderValue(v: unknown, depth: number): string {
  if (depth > MAX_DEPTH) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => renderValue(x, depth + 1)).join(',');
  if (!isObj(v)) return '';
  if (Array.isArray(v.set)) {
    const elems = v.set.map((e) =>
      Array.isArray(e) && e.length === 2
        ? `${renderValue(e[0], depth + 1)} : ${renderValue(e[1], depth + 1)}`
        : renderValue(e, depth + 1),
    );
    return `{ ${elems.join(', ')} }`;
  }
  if (isObj(v.prefix)) return `${str(v.prefix.addr)}/${str(v.prefix.len)}`;
  if (Array.isArray(v.range)) return v.range.map((x) => renderValue(x, depth + 1)).join('-');
  if (Array.isArray(v.concat)) return v.concat.map((x) => renderValue(x, depth + 1)).join(' . ');
  if (isObj(v.map)) return `${renderValue(v.map.key, depth + 1)} map ${renderValue(v.map.data, depth + 1)}`;
  if (isObj(v.ct)) {
    const dir = typeof v.ct.dir === 'string' ? `${v.ct.dir} ` : '';
    return `ct ${dir}${str(v.ct.key)}`;
  }
  if (isObj(v.meta)) {
    const key = str(v.meta.key);
    return BARE_META.has(key) ? key : `meta ${key}`;
  }
  if (isObj(v.payload)) {
    const p = v.payload;
    return p.protocol !== undefined ? `${str(p.protocol)} ${str(p.field)}` : `@${str(p.base)},${str(p.offset)},${str(p.len)}`;
  }
  // Verdicts appear as values in vmaps; other unknown objects are left out.
  const key = Object.keys(v)[0];
  return key !== undefined && VERDICTS.has(key) ? renderStatement(v, depth + 1) : '';
}

function renderNat(key: string, v: unknown, depth: number): string {
  if (!isObj(v)) return key;
  const addr = v.addr !== undefined ? renderValue(v.addr, depth + 1) : '';
  const port = v.port !== undefined ? `:${renderValue(v.port, depth + 1)}` : '';
  return addr || port ? `${key} to ${addr}${port}` : key;
}

/** One rule statement ({"match": ...}, {"accept": null}, ...); '' to leave it out. */
function renderStatement(s: unknown, depth: number): string {
  if (depth > MAX_DEPTH || !isObj(s)) return '';
  const [key, v] = Object.entries(s)[0] ?? [];
  if (key === undefined) return '';
  switch (key) {
    case 'match': {
      if (!isObj(v)) return '';
      const op = typeof v.op === 'string' && v.op !== '==' && v.op !== 'in' ? `${v.op} ` : '';
      return `${renderValue(v.left, depth + 1)} ${op}${renderValue(v.right, depth + 1)}`;
    }
    case 'counter':
      return ''; // noise in a one-line explanation
    case 'jump':
    case 'goto':
      return `${key} ${isObj(v) ? str(v.target) : '?'}`;
    case 'snat':
    case 'dnat':
    case 'masquerade':
    case 'redirect':
      return renderNat(key, v, depth);
    case 'mangle':
      return isObj(v) ? `${renderValue(v.key, depth + 1)} set ${renderValue(v.value, depth + 1)}` : '';
    case 'vmap':
      return isObj(v) ? `${renderValue(v.key, depth + 1)} vmap ${renderValue(v.data, depth + 1)}` : '';
    case 'ct count':
      return isObj(v) ? `ct count ${v.inv === true ? 'over ' : ''}${str(v.val)}` : 'ct count';
    case 'ct helper':
    case 'ct timeout':
    case 'ct expectation':
      return `${key} set "${str(v)}"`;
    case 'xt': {
      if (!isObj(v)) return 'xt';
      const name = str(v.name);
      // The CT target's options are not in nft's JSON; say so rather than guess.
      const note = name === 'CT' ? ' (options hidden by nft -j; may be --notrack)' : '';
      return `xt ${str(v.type)} ${name}${note}`;
    }
    case 'flow':
      return isObj(v) ? `flow ${str(v.op, 'add')} ${str(v.flowtable)}` : 'flow';
    default:
      // accept, drop, notrack, synproxy, reject, log, ... print as their keyword.
      return key;
  }
}

function renderRule(expr: unknown[]): string {
  return clip(expr.map((s) => renderStatement(s, 0)).filter((t) => t !== '').join(' '));
}

/** Ports of a match's right side: 80, {set: [80, 443, {range: [1000, 2000]}]}, {range: [a, b]}; undefined if not understood. */
function portRanges(v: unknown): PortRange[] | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return [[v, v]];
  if (isObj(v) && Array.isArray(v.range) && v.range.length === 2) {
    const [a, b] = v.range;
    return typeof a === 'number' && typeof b === 'number' ? [[a, b]] : undefined;
  }
  const items = Array.isArray(v) ? v : isObj(v) && Array.isArray(v.set) ? v.set : undefined;
  if (!items) return undefined;
  const out: PortRange[] = [];
  for (const item of items) {
    const r = portRanges(item);
    if (!r) return undefined;
    out.push(...r);
  }
  return out;
}

/** Which protocol and ports an nft rule's top-level matches limit it to. */
function nftScope(expr: unknown[]): PortScope | undefined {
  const scope: PortScope = {};
  let any = false;
  for (const stmt of expr) {
    if (!isObj(stmt) || !isObj(stmt.match)) continue;
    const { left, right, op } = stmt.match;
    if (!isObj(left)) continue;
    if (isObj(left.meta) && left.meta.key === 'l4proto' && typeof right === 'string' && op !== '!=') {
      scope.proto = right;
      any = true;
    }
    if (!isObj(left.payload)) continue;
    const { protocol, field } = left.payload;
    if (field !== 'dport' && field !== 'sport') continue;
    any = true;
    if (typeof protocol === 'string' && protocol !== 'th') scope.proto = protocol;
    const ranges = portRanges(right);
    if (!ranges || op === '!=') scope.unsure = true;
    else scope[field === 'dport' ? 'dports' : 'sports'] = ranges;
  }
  return any ? scope : undefined;
}

const VERDICT_KEYS = new Set(['accept', 'drop', 'reject', 'return', 'queue']);

function nftVerdict(expr: unknown[]): string | undefined {
  for (const stmt of [...expr].reverse()) {
    if (!isObj(stmt)) continue;
    const [key, v] = Object.entries(stmt)[0] ?? [];
    if (key === undefined) continue;
    if (VERDICT_KEYS.has(key)) return key;
    if ((key === 'jump' || key === 'goto') && isObj(v)) return `${key} ${str(v.target)}`;
  }
  return undefined;
}

function ruleUsers(r: Obj): ConntrackUser[] {
  if (!Array.isArray(r.expr)) return [];
  const found = new Set<ConntrackUserKind>();
  collectKinds(r.expr, found, 0);
  if (found.size === 0) return [];
  const scope = nftScope(r.expr);
  const verdict = nftVerdict(r.expr);
  const base = {
    source: 'nft' as const,
    family: str(r.family),
    table: str(r.table),
    chain: str(r.chain),
    ...(typeof r.handle === 'number' && Number.isFinite(r.handle) ? { handle: r.handle } : {}),
    detail: renderRule(r.expr),
    ...(scope ? { scope } : {}),
    ...(verdict ? { verdict } : {}),
  };
  return [...found].map((kind) => ({ ...base, kind }));
}

/** Table-level objects: ct helper/timeout/expectation objects and flowtables. */
function objectUser(key: string, o: Obj): ConntrackUser | undefined {
  const at = { source: 'nft' as const, family: str(o.family), table: str(o.table), chain: '*' };
  const name = str(o.name);
  switch (key) {
    case 'ct helper':
      return { ...at, kind: 'helper', detail: `ct helper ${name} { type "${str(o.type)}" protocol ${str(o.protocol)} }` };
    case 'ct timeout':
      return { ...at, kind: 'ct-match', detail: `ct timeout ${name} { protocol ${str(o.protocol)} }` };
    case 'ct expectation':
      return { ...at, kind: 'ct-match', detail: `ct expectation ${name} { protocol ${str(o.protocol)} }` };
    case 'flowtable': {
      const dev = Array.isArray(o.dev) ? o.dev.map((d) => str(d)).join(', ') : str(o.dev, '');
      return { ...at, kind: 'flowtable', detail: clip(`flowtable ${name} { hook ${str(o.hook)} devices = { ${dev} } }`) };
    }
    default:
      return undefined;
  }
}

/** What in `nft -j list ruleset` output needs conntrack; throws only if it is not such a document. */
export function analyzeNftJson(json: unknown): ConntrackUser[] {
  if (!isObj(json) || !Array.isArray(json.nftables)) {
    throw new Error('not an nft JSON ruleset: expected {"nftables": [...]} as printed by `nft -j list ruleset`');
  }
  const users: ConntrackUser[] = [];
  for (const item of json.nftables) {
    if (!isObj(item)) continue;
    for (const [key, value] of Object.entries(item)) {
      if (!isObj(value)) continue;
      if (key === 'rule') {
        users.push(...ruleUsers(value));
      } else if (key === 'chain' && value.type === 'nat') {
        // Reported even when empty: adding any nat rule would turn conntrack
        // on. (On a 6.x kernel an empty nat chain alone registers no ct hooks;
        // the nat expressions in its rules do.)
        users.push({
          source: 'nft',
          family: str(value.family),
          table: str(value.table),
          chain: str(value.name),
          kind: 'nat',
          detail: `type nat hook ${str(value.hook)} priority ${str(value.prio)}`,
        });
      } else {
        const user = objectUser(key, value);
        if (user) users.push(user);
      }
    }
  }
  return users;
}

/** Base chains of an `nft -j list ruleset` document (chains with a hook). */
export function nftBaseChains(json: unknown): BaseChain[] {
  if (!isObj(json) || !Array.isArray(json.nftables)) return [];
  const out: BaseChain[] = [];
  for (const item of json.nftables) {
    if (!isObj(item) || !isObj(item.chain) || typeof item.chain.hook !== 'string') continue;
    const c = item.chain;
    out.push({ source: 'nft', family: str(c.family), table: str(c.table), chain: str(c.name), hook: str(c.hook), type: str(c.type), policy: str(c.policy, 'accept') });
  }
  return out;
}

// ------------------------------------------------------------ iptables-save

/** Words of a rule line; double-quoted strings (comments) stay one word, quotes kept. */
function tokenize(line: string): string[] {
  return line.match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
}

/** The options following `-m NAME` / `-j NAME`, up to the next short option (-p, -m, -j, ...). */
function optionsAt(tokens: string[], start: number): string[] {
  const out: string[] = [];
  for (let i = start; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (t === '!') {
      if (!tokens[i + 1]?.startsWith('--')) break; // "! -s ..." belongs to the next option
      out.push(t);
    } else if (t.startsWith('--') || !t.startsWith('-')) {
      out.push(t);
    } else {
      break;
    }
  }
  return out;
}

function targetKind(target: string, opts: string[]): ConntrackUserKind | undefined {
  if (target === 'CT') {
    // xt_CT takes no conntrack reference for --notrack, only for templates.
    if (opts.includes('--notrack')) return 'notrack';
    return opts.includes('--helper') ? 'helper' : 'xt-conntrack';
  }
  // Target names are upper case; a lower-case -j names a user chain (or a match).
  return target === target.toUpperCase() ? XT_KINDS[target] : undefined;
}

function iptablesRuleUsers(table: string, chain: string, tokens: string[]): Map<ConntrackUserKind, string[]> {
  const byKind = new Map<ConntrackUserKind, string[]>();
  const add = (kind: ConntrackUserKind, text: string) => byKind.set(kind, [...(byKind.get(kind) ?? []), text]);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const name = tokens[i + 1];
    if (name === undefined) break;
    if (t === '-m' || t === '--match') {
      const kind = IPT_MATCH_KINDS[name];
      if (kind) add(kind, ['-m', name, ...optionsAt(tokens, i + 2)].join(' '));
    } else if (t === '-j' || t === '--jump') {
      const opts = optionsAt(tokens, i + 2);
      const kind = targetKind(name, opts);
      if (kind) add(kind, ['-j', name, ...opts].join(' '));
    }
  }
  // Every rule of the nat table runs inside the NAT hooks, whatever its target.
  if (table === 'nat' && !byKind.has('nat')) add('nat', ['-A', chain, ...tokens].join(' '));
  return byKind;
}

/** "80", "1000:2000", "80,443,1000:2000" (multiport) as ranges; undefined if not understood. */
function iptPorts(text: string | undefined): PortRange[] | undefined {
  if (text === undefined) return undefined;
  const out: PortRange[] = [];
  for (const part of text.split(',')) {
    const m = /^(\d+)(?::(\d+))?$/.exec(part);
    if (!m) return undefined;
    out.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return out;
}

function iptablesScope(tokens: string[]): PortScope | undefined {
  const scope: PortScope = {};
  let any = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const negated = tokens[i - 1] === '!';
    if ((t === '-p' || t === '--protocol') && tokens[i + 1] !== undefined) {
      if (negated) scope.unsure = true;
      else scope.proto = tokens[i + 1];
      any = true;
    } else if (t === '--dport' || t === '--dports' || t === '--destination-port' || t === '--sport' || t === '--sports' || t === '--source-port') {
      any = true;
      const ranges = iptPorts(tokens[i + 1]);
      if (!ranges || negated) scope.unsure = true;
      else scope[t.startsWith('--d') ? 'dports' : 'sports'] = ranges;
    }
  }
  // -p alone limits the protocol, not the ports; keep it (a udp-only rule cannot affect tcp).
  return any ? scope : undefined;
}

const IPT_VERDICTS: Record<string, string> = { ACCEPT: 'accept', DROP: 'drop', REJECT: 'reject', RETURN: 'return' };

function iptablesVerdict(tokens: string[]): string | undefined {
  const i = Math.max(tokens.lastIndexOf('-j'), tokens.lastIndexOf('--jump'), tokens.lastIndexOf('-g'));
  const target = i >= 0 ? tokens[i + 1] : undefined;
  if (target === undefined) return undefined;
  if (IPT_VERDICTS[target]) return IPT_VERDICTS[target];
  // Target names are upper case; a lower-case one is a user chain.
  return target === target.toUpperCase() ? undefined : `jump ${target}`;
}

/** Built-in chains of an iptables-save dump with their policies (":INPUT DROP [0:0]"). */
export function iptablesBaseChains(text: string, source: 'iptables-legacy' | 'ip6tables-legacy'): BaseChain[] {
  const family = source === 'ip6tables-legacy' ? 'ip6' : 'ip';
  const out: BaseChain[] = [];
  let table = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1).trim();
    const m = /^:(\S+)\s+(ACCEPT|DROP)\b/.exec(line);
    if (m && table) out.push({ source, family, table, chain: m[1]!, hook: m[1]!.toLowerCase(), type: table, policy: m[2]!.toLowerCase() });
  }
  return out;
}

/** What in `iptables-legacy-save` / `ip6tables-legacy-save` output needs conntrack. */
export function analyzeIptablesSave(text: string, source: 'iptables-legacy' | 'ip6tables-legacy'): ConntrackUser[] {
  if (typeof text !== 'string') return [];
  const family = source === 'ip6tables-legacy' ? 'ip6' : 'ip';
  const users: ConntrackUser[] = [];
  let table = '';
  let natChains: string[] = [];
  let natReported = false;
  // The nat table itself is reported once, before its rules.
  const reportNatTable = () => {
    if (table !== 'nat' || natReported || natChains.length === 0) return;
    natReported = true;
    users.push({ source, family, table, chain: '*', kind: 'nat', detail: `*nat table loaded (chains ${natChains.join(',')})` });
  };
  for (const raw of text.split(/\r?\n/)) {
    // `iptables-save -c` prefixes rules with "[packets:bytes]".
    const line = raw.trim().replace(/^\[\d+:\d+\]\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      natChains = [];
      natReported = false;
    } else if (line.startsWith(':')) {
      const chain = line.slice(1).split(/\s+/)[0];
      if (table === 'nat' && chain) natChains.push(chain);
    } else if (line === 'COMMIT') {
      reportNatTable();
      table = '';
    } else if (line.startsWith('-A ') || line.startsWith('-I ')) {
      reportNatTable();
      const [, chain, ...rest] = tokenize(line);
      if (chain === undefined || table === '') continue;
      const scope = iptablesScope(rest);
      const verdict = iptablesVerdict(rest);
      for (const [kind, parts] of iptablesRuleUsers(table, chain, rest)) {
        users.push({ source, family, table, chain, kind, detail: clip(parts.join(' ')), ...(scope ? { scope } : {}), ...(verdict ? { verdict } : {}) });
      }
    }
  }
  return users;
}

// ------------------------------------------------------------------ verdict

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
