/**
 * Reads `nft -j list ruleset` output: what needs conntrack (see ruleset.ts for
 * the kernel fact) and which base chains exist with which policy. Pure.
 */
import { clip, XT_KINDS, type BaseChain, type ConntrackUser, type ConntrackUserKind, type PortRange, type PortScope } from './ruleset.js';

type Obj = Record<string, unknown>;

// nft JSON nests a few levels; anything deeper is not a ruleset we understand.
const MAX_DEPTH = 32;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, fallback = '?'): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

const NAT_STATEMENTS = new Set(['snat', 'dnat', 'masquerade', 'redirect']);

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
