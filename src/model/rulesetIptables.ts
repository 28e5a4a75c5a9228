/**
 * Reads `iptables-legacy-save` / `ip6tables-legacy-save` output: what needs
 * conntrack (see ruleset.ts for the kernel fact) and the built-in chains'
 * policies. Pure.
 */
import { clip, IPT_MATCH_KINDS, XT_KINDS, type BaseChain, type ConntrackUser, type ConntrackUserKind, type PortRange, type PortScope } from './ruleset.js';

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
