/**
 * The pure advisors (src/advise) from fixtures: rulesets captured with
 * `nft -j list ruleset` / iptables-legacy-save in throwaway namespaces (see
 * ruleset.test.ts; nft-stateful-drop.json is an inet filter input chain with
 * policy drop, `ct state established,related accept`, `udp dport 5353 ct
 * state new accept`, and `tcp dport 8080 dnat to 198.18.0.9:80`), and a
 * snapshot built by hand.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyzeIptablesSave, iptablesBaseChains } from '../../src/model/rulesetIptables.js';
import { analyzeNftJson, nftBaseChains } from '../../src/model/rulesetNft.js';
import { type BaseChain, type ConntrackUser } from '../../src/model/ruleset.js';
import { adviseNotrack, notrackFlags, scopeCovers, type AdviseInput } from '../../src/advise/notrack.js';
import { HELPER_PORTS } from '../../src/model/conntrack.js';
import { directions, iptablesCommands, iptablesRestore, nftScript, portText, untrackedAccept, type NotrackTarget } from '../../src/advise/rules.js';
import { resolveRoles } from '../../src/advise/roles.js';
import type { RoleCounts, TrafficRole } from '../../src/model/roles.js';
import { keepsOn } from '../../src/advise/keepsOn.js';
import { SNAPSHOT_SCHEMA, type PortRow, type SnapshotV1 } from '../../src/model/snapshot.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/ruleset/${name}`, import.meta.url), 'utf8');
}

function nftFixture(name: string): { users: ConntrackUser[]; chains: BaseChain[] } {
  const json: unknown = JSON.parse(fixture(name));
  return { users: analyzeNftJson(json), chains: nftBaseChains(json) };
}

const NS = 4026532000;

function tg(proto: 'udp' | 'tcp', p: number, role: TrafficRole): NotrackTarget {
  return { proto, port: p, portEnd: p, roles: [role] };
}

function port(proto: 'udp' | 'tcp', p: number, inserts: number, family: 'ipv4' | 'ipv6' = 'ipv4'): PortRow {
  return { netns: NS, family, proto, protoNum: proto === 'udp' ? 17 : 6, port: p, inserts, drops: 0 };
}

/** A 10 s window: udp/5000 9000 inserts, tcp/8080 500, udp/5353 400 (v4) + 100 (v6). */
function snapshot(count = 20_000, max = 262_144): SnapshotV1 {
  const ports = [port('udp', 5000, 9000), port('tcp', 8080, 500), port('udp', 5353, 400), port('udp', 5353, 100, 'ipv6')];
  const inserts = ports.reduce((a, p) => a + p.inserts, 0);
  return {
    schema: SNAPSHOT_SCHEMA,
    host: 'fixture',
    kernel: '6.18.0',
    startedAt: '2026-12-01T00:00:00.000Z',
    durationMs: 10_000,
    probe: { tier: 'netfilter', programs: [], refused: [] },
    table: { count, max, buckets: max, fillRatio: count / max },
    rates: { insertsPerSec: inserts / 10, dropsPerSec: 0, earlyDropsPerSec: 0, insertFailedPerSec: 0, clashResolvePerSec: 0, searchRestartPerSec: 0, chainTooLongPerSec: 0, invalidPerSec: 0 },
    totals: { inserts, drops: 0, dropsAttributed: 0, earlyDrops: 0, insertFailed: 0, clashResolve: 0, searchRestart: 0, chainTooLong: 0, invalid: 0 },
    ports,
    tuples: [],
    namespaces: [{ inode: NS, name: 'fixture', count, fillRatio: count / max, inserts, drops: 0, earlyDrops: 0, insertFailed: 0 }],
    overflow: { portMapFull: 0, tupleMapFull: 0, dropTupleMapFull: 0, portMapEntries: 4, portMapCapacity: 8192, tupleMapEntries: 0, tupleMapCapacity: 16384, dropTupleMapEntries: 0, dropTupleMapCapacity: 4096, dropsUnparsed: 0, netnsMapFull: 0, portsOmitted: 0, tuplesOmitted: 0 },
    netnsErrors: [],
  };
}

function input(over: Partial<AdviseInput> = {}): AdviseInput {
  const rs = nftFixture('nft-stateful-drop.json');
  return { snapshot: snapshot(), users: rs.users, chains: rs.chains, helpers: [], helperAutoAssign: null, role: 'server', limit: 5, ...over };
}

describe('adviseNotrack', () => {
  it('ranks by share of inserts, merging families, and says when occupancy is unknown', () => {
    const a = adviseNotrack(input());
    expect(a.candidates.map((c) => [`${c.proto}/${c.port}`, c.inserts, c.insertShare, c.insertsPerSec, c.families])).toEqual([
      ['udp/5000', 9000, 0.9, 900, ['ipv4']],
      ['tcp/8080', 500, 0.05, 50, ['ipv4']],
      ['udp/5353', 500, 0.05, 50, ['ipv4', 'ipv6']],
    ]);
    expect(a.census.available).toBe(false);
    expect(a.census.note).toMatch(/occupancy per port is not available/);
    expect(a.candidates.every((c) => c.occupancy === null)).toBe(true);
  });

  it('flags the NATed port and the port a ct state rule matches as unsafe, with the rule', () => {
    const a = adviseNotrack(input());
    const byPort = new Map(a.candidates.map((c) => [`${c.proto}/${c.port}`, c]));
    expect(byPort.get('udp/5000')!.safe).toBe(true);
    const nat = byPort.get('tcp/8080')!;
    expect(nat.safe).toBe(false);
    expect(nat.flags.filter((f) => f.severity === 'unsafe')).toEqual([
      { severity: 'unsafe', reason: 'NAT on this port: untracked packets are not translated', rule: 'nft ip nat pre (handle 2): tcp dport 8080 dnat to 198.18.0.9:80' },
    ]);
    const state = byPort.get('udp/5353')!;
    expect(state.safe).toBe(false);
    expect(state.flags.find((f) => f.severity === 'unsafe')).toMatchObject({
      reason: expect.stringMatching(/conntrack state rule matches this port and would stop matching.*verdict is accept/),
      rule: 'nft inet filter input (handle 3): udp dport 5353 ct state new accept',
    });
  });

  it('asks for an explicit accept of untracked packets in a drop-policy input chain, for the incoming direction of the role', () => {
    const server = adviseNotrack(input()).candidates[0]!;
    expect(server.flags.some((f) => f.severity === 'warn' && /drops by policy/.test(f.reason))).toBe(true);
    expect(server.untrackedAccepts.map((x) => x.command)).toEqual(['nft insert rule inet filter input udp dport 5000 ct state untracked accept']);
    const client = adviseNotrack(input({ role: 'client' })).candidates[0]!;
    expect(client.untrackedAccepts.map((x) => x.command)).toEqual(['nft insert rule inet filter input udp sport 5000 ct state untracked accept']);
    // both ends local: the input chain sees requests (dport) and replies (sport)
    const local = adviseNotrack(input({ role: 'local' })).candidates[0]!;
    expect(local.untrackedAccepts.map((x) => x.command)).toEqual([
      'nft insert rule inet filter input udp dport 5000 ct state untracked accept',
      'nft insert rule inet filter input udp sport 5000 ct state untracked accept',
    ]);
    // forwarded traffic never reaches the input chain
    expect(adviseNotrack(input({ role: 'forward' })).candidates[0]!.untrackedAccepts).toEqual([]);
  });

  it('estimates fill after the change from insert shares, or from a census when there is one', () => {
    const a = adviseNotrack(input());
    expect(a.candidates[0]!.fillAfter).toEqual({ countNow: 20_000, max: 262_144, fillNow: 0.0763, countAfter: 2000, fillAfter: 0.0076, method: 'insert-share' });
    // Only udp/5000 is safe, so "all safe" is the same change.
    expect(a.allSafe!.ports).toEqual(['udp/5000']);
    expect(a.allSafe!.fillAfter.countAfter).toBe(2000);
    const census = { source: 'fixture', total: 10_000, byPort: { 'udp/5000': 2500, 'tcp/8080': 7000, 'udp/5353': 500 } };
    const b = adviseNotrack(input({ census }));
    // occupancy outranks: tcp/8080 holds 70% of the entries with 5% of the inserts
    expect(b.candidates.map((c) => `${c.proto}/${c.port}`)).toEqual(['udp/5000', 'tcp/8080', 'udp/5353']);
    expect(b.candidates[0]!.occupancy).toEqual({ entries: 2500, share: 0.25 });
    expect(b.candidates[0]!.fillAfter).toMatchObject({ countAfter: 15_000, method: 'census' });
    expect(b.candidates[1]!.occupancy).toEqual({ entries: 7000, share: 0.7 });
    const c = adviseNotrack(input({ census: { ...census, byPort: { 'tcp/8080': 9500 } } }));
    expect(c.candidates[0]!.port).toBe(8080);
  });

  it('reads the legacy dump: DNAT 8080, the ftp helper rule on 21, state rules for all ports', () => {
    const text = fixture('iptables-legacy-save.txt');
    const users = analyzeIptablesSave(text, 'iptables-legacy');
    const chains = iptablesBaseChains(text, 'iptables-legacy');
    const base = { users, chains, helpers: [], helperAutoAssign: null };
    expect(notrackFlags(tg('tcp', 8080, 'server'), base).filter((f) => f.severity === 'unsafe').map((f) => f.rule)).toEqual([
      'iptables-legacy ip nat PREROUTING: -j DNAT --to-destination 10.0.0.2:80',
    ]);
    expect(notrackFlags(tg('tcp', 21, 'server'), base).filter((f) => f.severity === 'unsafe').map((f) => f.rule)).toEqual([
      'iptables-legacy ip raw PREROUTING: -j CT --helper ftp',
    ]);
    // MASQUERADE without a port: a warning for a server, a blocker for a client
    const serverFlags = notrackFlags(tg('udp', 5000, 'server'), base);
    expect(serverFlags.filter((f) => f.severity === 'unsafe')).toEqual([]);
    expect(serverFlags.some((f) => f.severity === 'warn' && /NAT rule without a port filter/.test(f.reason))).toBe(true);
    expect(notrackFlags(tg('udp', 5000, 'client'), base).some((f) => f.severity === 'unsafe' && /NAT for all ports/.test(f.reason))).toBe(true);
    expect(chains.filter((c) => c.policy === 'drop')).toEqual([]);
  });

  it('flags helper ports: a warning while helpers need a rule, a blocker with automatic assignment', () => {
    const helpers = [{ name: 'ftp', how: 'built-in', ports: HELPER_PORTS.ftp! }, { name: 'sip', how: 'module', ports: HELPER_PORTS.sip! }];
    const t = tg('udp', 5060, 'server');
    expect(notrackFlags(t, { users: [], chains: [], helpers, helperAutoAssign: null })).toEqual([
      { severity: 'warn', reason: expect.stringMatching(/^the sip helper \(module\) serves this port by default/) },
    ]);
    expect(notrackFlags(t, { users: [], chains: [], helpers, helperAutoAssign: true })[0]!.severity).toBe('unsafe');
    expect(notrackFlags({ ...t, port: 5000, portEnd: 5000 }, { users: [], chains: [], helpers, helperAutoAssign: true })).toEqual([]);
    // a range that covers the helper's port is flagged too
    expect(notrackFlags({ ...t, port: 5000, portEnd: 5100 }, { users: [], chains: [], helpers, helperAutoAssign: true })[0]!.severity).toBe('unsafe');
  });

  it('scopes: port sets and ranges, other protocols, negations', () => {
    expect(scopeCovers({ proto: 'udp', dports: [[5000, 5010]] }, 'udp', 5005)).toEqual({ covers: true, portSpecific: true });
    expect(scopeCovers({ proto: 'udp', dports: [[5000, 5010]] }, 'udp', 5011)).toEqual({ covers: false, portSpecific: false });
    expect(scopeCovers({ proto: 'tcp' }, 'udp', 53)).toEqual({ covers: false, portSpecific: false });
    expect(scopeCovers({ proto: 'udp', sports: [[53, 53]] }, 'udp', 53).portSpecific).toBe(true);
    expect(scopeCovers({ proto: 'udp', unsure: true }, 'udp', 53)).toEqual({ covers: true, portSpecific: false });
    expect(scopeCovers(undefined, 'tcp', 1)).toEqual({ covers: true, portSpecific: false });
    // a range target overlapping the rule's ports
    expect(scopeCovers({ proto: 'udp', dports: [[5000, 5010]] }, 'udp', 4990, 5000).portSpecific).toBe(true);
    expect(scopeCovers({ proto: 'udp', dports: [[5000, 5010]] }, 'udp', 4990, 4999).covers).toBe(false);
  });
});

describe('NOTRACK rules', () => {
  const t = tg('udp', 5000, 'server');
  it('covers both directions of each role: server, client, local (all four), forward (prerouting both ways)', () => {
    const dirs = (r: TrafficRole[]) => directions(r).map((d) => `${d.hook} ${d.field}`);
    expect(dirs(['server'])).toEqual(['prerouting dport', 'output sport']);
    expect(dirs(['client'])).toEqual(['prerouting sport', 'output dport']);
    expect(dirs(['local'])).toEqual(['prerouting dport', 'prerouting sport', 'output dport', 'output sport']);
    expect(dirs(['forward'])).toEqual(['prerouting dport', 'prerouting sport']);
    // a port seen in several roles gets the union
    expect(dirs(['server', 'forward'])).toEqual(['prerouting dport', 'prerouting sport', 'output sport']);
    const s = nftScript([t, tg('tcp', 443, 'client'), { proto: 'udp', port: 60000, portEnd: 60100, roles: ['forward'] }]);
    expect(s.split('\n').filter((l) => /notrack comment/.test(l)).map((l) => l.trim())).toEqual([
      'tcp sport 443 counter notrack comment "ctop tcp/443 prerouting sport"',
      'udp dport 5000 counter notrack comment "ctop udp/5000 prerouting dport"',
      'udp dport 60000-60100 counter notrack comment "ctop udp/60000-60100 prerouting dport"',
      'udp sport 60000-60100 counter notrack comment "ctop udp/60000-60100 prerouting sport"',
      'tcp dport 443 counter notrack comment "ctop tcp/443 output dport"',
      'udp sport 5000 counter notrack comment "ctop udp/5000 output sport"',
    ]);
    expect(s.startsWith('table inet ctop_notrack\ndelete table inet ctop_notrack\ntable inet ctop_notrack {')).toBe(true);
    expect(s).toMatch(/type filter hook prerouting priority raw;/);
    expect(s).not.toMatch(/flush/);
    // counting: every direction, no notrack; notrack+count: the role's directions exempted, the rest counted
    const count = nftScript([t], 'count');
    expect(count).not.toMatch(/notrack comment/);
    expect(count.match(/counter comment/g)).toHaveLength(4);
    const both = nftScript([t], 'notrack+count');
    expect(both.match(/counter notrack comment/g)).toHaveLength(2);
    expect(both.match(/counter comment/g)).toHaveLength(2);
  });
  it('writes the iptables dialects with -j CT --notrack in the raw table, ranges as LO:HI', () => {
    expect(iptablesCommands([t], 'nft')).toEqual([
      'iptables-nft -t raw -A PREROUTING -p udp -m udp --dport 5000 -j CT --notrack',
      'iptables-nft -t raw -A OUTPUT -p udp -m udp --sport 5000 -j CT --notrack',
      'ip6tables-nft -t raw -A PREROUTING -p udp -m udp --dport 5000 -j CT --notrack',
      'ip6tables-nft -t raw -A OUTPUT -p udp -m udp --sport 5000 -j CT --notrack',
    ]);
    expect(iptablesCommands([t], 'legacy')[0]).toBe('iptables-legacy -t raw -A PREROUTING -p udp -m udp --dport 5000 -j CT --notrack');
    expect(iptablesRestore([t])).toBe('*raw\n-A PREROUTING -p udp -m udp --dport 5000 -j CT --notrack\n-A OUTPUT -p udp -m udp --sport 5000 -j CT --notrack\nCOMMIT\n');
    expect(iptablesRestore([{ proto: 'udp', port: 60000, portEnd: 60100, roles: ['forward'] }])).toBe(
      '*raw\n-A PREROUTING -p udp -m udp --dport 60000:60100 -j CT --notrack\n-A PREROUTING -p udp -m udp --sport 60000:60100 -j CT --notrack\nCOMMIT\n',
    );
    expect(untrackedAccept(t, { source: 'iptables-legacy', family: 'ip', table: 'filter', chain: 'INPUT' }, 'dport').command).toBe(
      'iptables-legacy -t filter -I INPUT 1 -p udp -m udp --dport 5000 -m conntrack --ctstate UNTRACKED -j ACCEPT',
    );
    // iptables-nft's own tables show in nft's listing; their built-in chains get iptables syntax
    expect(untrackedAccept(t, { source: 'nft', family: 'ip6', table: 'filter', chain: 'INPUT' }, 'dport').command).toBe(
      'ip6tables-nft -t filter -I INPUT 1 -p udp -m udp --dport 5000 -m conntrack --ctstate UNTRACKED -j ACCEPT',
    );
    expect(untrackedAccept({ proto: 'udp', port: 60000, portEnd: 60100 }, { source: 'nft', family: 'inet', table: 'filter', chain: 'output' }, 'sport').command).toBe(
      'nft insert rule inet filter output udp sport 60000-60100 ct state untracked accept',
    );
  });
});

describe('roles', () => {
  const rc = (server: number, client: number, local: number, forward: number): RoleCounts => ({ server, client, local, forward });
  it('auto takes every role above the noise floor, with the evidence in words', () => {
    expect(resolveRoles(rc(0, 0, 0, 97), 'auto')).toEqual({ roles: ['forward'], inferred: true, counts: rc(0, 0, 0, 97), evidence: '100 % of new entries forwarded' });
    const mixed = resolveRoles(rc(30, 0, 970, 0), 'auto');
    expect(mixed.roles).toEqual(['server', 'local']);
    expect(mixed.evidence).toBe('97 % of new entries between two local ends, 3.0 % to a local server');
    // one stray health check in a thousand is noise
    expect(resolveRoles(rc(999, 0, 1, 0), 'auto').roles).toEqual(['server']);
  });
  it('a forced role is taken as given, and says what was measured; no measurement assumes server and says so', () => {
    expect(resolveRoles(rc(0, 0, 0, 10), 'server')).toMatchObject({ roles: ['server'], inferred: false, evidence: 'forced with --role server (measured: 100 % of new entries forwarded)' });
    expect(resolveRoles(null, 'auto')).toMatchObject({ roles: ['server'], inferred: false, evidence: expect.stringMatching(/not counted by this probe tier: server assumed/) });
    expect(resolveRoles(rc(0, 0, 0, 0), 'auto').inferred).toBe(false);
  });
});

describe('the planner: roles and ranges', () => {
  /** The field report's mix: a local cache on udp/11211, a UDP service over 60000-60100, a TCP service forwarded. */
  function mix(): SnapshotV1 {
    const s = snapshot();
    const ports: (PortRow & { roles: RoleCounts })[] = [
      { ...port('udp', 11211, 3000), roles: { server: 0, client: 0, local: 3000, forward: 0 } },
      { ...port('tcp', 443, 1000), roles: { server: 0, client: 0, local: 0, forward: 1000 } },
    ];
    // 101 ports of 50 inserts each, all to a local server, a few quiet ports inside
    for (let p = 60000; p <= 60100; p++) if (p % 17 !== 0) ports.push({ ...port('udp', p, 50), roles: { server: 50, client: 0, local: 0, forward: 0 } });
    // two isolated ports: no range
    ports.push({ ...port('udp', 7000, 40), roles: { server: 40, client: 0, local: 0, forward: 0 } }, { ...port('udp', 7010, 40), roles: { server: 40, client: 0, local: 0, forward: 0 } });
    const inserts = ports.reduce((a, p) => a + p.inserts, 0);
    return { ...s, ports, totals: { ...s.totals, inserts }, namespaces: [{ ...s.namespaces[0]!, inserts }] };
  }
  it('offers the spread service as one range candidate ranked by its combined share, each candidate with its measured role', () => {
    const a = adviseNotrack(input({ snapshot: mix(), role: 'auto', users: [], chains: [], limit: 10 }));
    const total = mix().totals.inserts!;
    expect(a.candidates.map((c) => [portText(c), c.role, c.inserts, c.portsSeen])).toEqual([
      ['udp/60000-60100', 'server', 95 * 50, 95],
      ['udp/11211', 'local', 3000, 1],
      ['tcp/443', 'forward', 1000, 1],
      ['udp/7000', 'server', 40, 1],
      ['udp/7010', 'server', 40, 1],
    ]);
    const range = a.candidates[0]!;
    expect(range).toMatchObject({ proto: 'udp', port: 60000, portEnd: 60100, roles: ['server'], insertShare: Math.round((4750 / total) * 1e4) / 1e4 });
    expect(range.roleEvidence.evidence).toBe('100 % of new entries to a local server');
    expect(range.flags).toContainEqual({ severity: 'info', reason: 'a range: exempts all 101 ports, 95 of which had new entries in the window' });
    expect(range.rules.nft).toMatch(/udp dport 60000-60100 counter notrack/);
    expect(range.rules.iptablesRestore).toMatch(/--sport 60000:60100/);
    expect(a.candidates[1]!.rules.nft.match(/notrack comment/g)).toHaveLength(4);
    expect(a.candidates[2]!.rules.iptablesRestore).toBe('*raw\n-A PREROUTING -p tcp -m tcp --dport 443 -j CT --notrack\n-A PREROUTING -p tcp -m tcp --sport 443 -j CT --notrack\nCOMMIT\n');
    expect(a.allSafe!.ports).toEqual(['udp/60000-60100', 'udp/11211', 'tcp/443', 'udp/7000', 'udp/7010']);
  });
  it('a port of another role inside the run splits it; a dominant port stays its own candidate', () => {
    const s = mix();
    const ports = s.ports.map((p) => (p.port === 60050 ? { ...p, inserts: 50, roles: { server: 0, client: 50, local: 0, forward: 0 } } : p));
    const a = adviseNotrack(input({ snapshot: { ...s, ports }, role: 'auto', users: [], chains: [], limit: 10 }));
    expect(a.candidates.filter((c) => c.portEnd > c.port).map((c) => portText(c)).sort()).toEqual(['udp/60000-60049', 'udp/60051-60100']);
    expect(a.candidates.find((c) => c.port === 60050)!.role).toBe('client');
    const dominated = s.ports.map((p) => (p.port === 60001 ? { ...p, inserts: 10_000 } : p));
    const b = adviseNotrack(input({ snapshot: { ...s, ports: dominated }, role: 'auto', users: [], chains: [], limit: 200 }));
    expect(b.candidates.some((c) => c.portEnd > c.port)).toBe(false);
    expect(b.candidates[0]!.port).toBe(60001);
  });
  it('a forced role applies to every candidate; without role counts auto assumes server and warns', () => {
    const a = adviseNotrack(input({ snapshot: mix(), role: 'client', users: [], chains: [], limit: 10 }));
    expect(new Set(a.candidates.map((c) => c.role))).toEqual(new Set(['client']));
    const b = adviseNotrack(input({ role: 'auto', users: [], chains: [] }));
    expect(b.candidates[0]!.role).toBe('server');
    expect(b.candidates[0]!.flags).toContainEqual({ severity: 'warn', reason: expect.stringMatching(/^role not measured: roles not counted by this probe tier/) });
  });
});

describe('keepsOn', () => {
  it('lists the rules that keep conntrack on and the helpers the kernel has', () => {
    const rs = nftFixture('nft-stateful-drop.json');
    const r = keepsOn({ users: rs.users, active: true, helpers: [{ name: 'ftp', how: 'built-in', ports: HELPER_PORTS.ftp! }], modules: [{ name: 'nf_conntrack', how: 'built-in' }], errors: [] });
    expect(r.keptOnByRules).toBe(true);
    expect(r.byKind).toEqual({ 'ct-match': 2, nat: 2 });
    expect(r.features).toEqual(['nf_conntrack (built-in)', 'helper ftp (built-in; ports tcp/21)']);
    expect(r.warning).toBeNull();
  });
  it('warns when conntrack is active but no rule uses it (and not when reading failed)', () => {
    const notrackOnly = nftFixture('nft-notrack.json').users;
    expect(keepsOn({ users: notrackOnly, active: true, helpers: [], errors: [] }).warning).toMatch(/active but nothing in the ruleset uses it.*iptables -L/);
    expect(keepsOn({ users: [], active: false, helpers: [], errors: [] }).warning).toBeNull();
    expect(keepsOn({ users: [], active: true, helpers: [], errors: ['nft: command not found'] }).warning).toBeNull();
  });
});
