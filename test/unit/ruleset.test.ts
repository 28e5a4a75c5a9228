/**
 * Fixtures in test/fixtures/ruleset/ are real output captured on Debian 12
 * (nftables 1.0.6, iptables 1.8.9, kernel 6.18) inside a throwaway
 * `ip netns add ctop-fixture-$$` namespace:
 *   nft-*.json              `ip netns exec NS nft -j list ruleset` after `nft -f` / `iptables-nft ...`
 *   nft-iptables-nft.list.txt  the same ruleset as `nft list ruleset` text, for comparison
 *   ip*tables-legacy-save.txt  `ip netns exec NS ip(6)tables-legacy-save`
 * The rulesets loaded are the ones each test describes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyzeIptablesSave } from '../../src/model/rulesetIptables.js';
import { analyzeNftJson } from '../../src/model/rulesetNft.js';
import { keepsConntrackOn, summarize, type ConntrackUser } from '../../src/model/ruleset.js';
import { readRuleset } from '../../src/source/ruleset.js';

function fixture(name: string): string {
  return readFileSync(new URL(`../fixtures/ruleset/${name}`, import.meta.url), 'utf8');
}

function nft(name: string): ConntrackUser[] {
  return analyzeNftJson(JSON.parse(fixture(name)));
}

/** The fields every test pins down: where, which rule, why. */
function brief(users: ConntrackUser[]) {
  return users.map((u) => [u.family, u.table, u.chain, u.handle, u.kind]);
}

describe('analyzeNftJson', () => {
  it('finds nothing in an empty ruleset', () => {
    const users = nft('nft-empty.json');
    expect(users).toEqual([]);
    expect(keepsConntrackOn(users)).toBe(false);
    expect(summarize(users)).toEqual([]);
  });

  it('reports ct state rules of an inet filter input chain', () => {
    // iifname "lo" accept; ct state established,related accept; ct state invalid drop; tcp dport 22 accept
    const users = nft('nft-ct-state.json');
    expect(users).toEqual([
      { source: 'nft', family: 'inet', table: 'filter', chain: 'input', handle: 3, kind: 'ct-match', detail: 'ct state established,related accept', verdict: 'accept' },
      { source: 'nft', family: 'inet', table: 'filter', chain: 'input', handle: 4, kind: 'ct-match', detail: 'ct state invalid drop', verdict: 'drop' },
    ]);
    expect(keepsConntrackOn(users)).toBe(true);
    expect(summarize(users)).toEqual([
      'nft inet filter input (handle 3): ct-match: ct state established,related accept',
      'nft inet filter input (handle 4): ct-match: ct state invalid drop',
    ]);
  });

  it('reports nat chains, even empty ones, and the dnat/masquerade rules', () => {
    const users = nft('nft-nat.json');
    expect(brief(users)).toEqual([
      ['ip', 'nat', 'prerouting', undefined, 'nat'],
      ['ip', 'nat', 'postrouting', undefined, 'nat'],
      ['ip', 'nat', 'output', undefined, 'nat'], // no rules at all
      ['ip', 'nat', 'prerouting', 4, 'nat'],
      ['ip', 'nat', 'postrouting', 5, 'nat'],
    ]);
    expect(users.map((u) => u.detail)).toEqual([
      'type nat hook prerouting priority -100',
      'type nat hook postrouting priority 100',
      'type nat hook output priority -100',
      'iifname eth0 tcp dport 8080 dnat to 10.0.0.2:80',
      'oifname eth0 masquerade',
    ]);
    expect(keepsConntrackOn(users)).toBe(true);
  });

  it('reports notrack rules apart: they exempt packets, not keep conntrack on', () => {
    const users = nft('nft-notrack.json');
    expect(brief(users)).toEqual([
      ['inet', 'raw', 'prerouting', 3, 'notrack'],
      ['inet', 'raw', 'output', 4, 'notrack'],
    ]);
    expect(users.map((u) => u.detail)).toEqual(['udp dport 53 notrack', 'udp sport 53 notrack']);
    expect(keepsConntrackOn(users)).toBe(false);
  });

  it('reads iptables-nft rules, which nft -j prints as bare xt expressions', () => {
    // iptables-nft -A INPUT -m conntrack --ctstate NEW -j ACCEPT
    // iptables-nft -A INPUT -p tcp --dport 22 -j ACCEPT
    // iptables-nft -t nat -A POSTROUTING -o eth0 -j MASQUERADE
    // iptables-nft -t raw -A PREROUTING -p udp --dport 53 -j CT --notrack
    const users = nft('nft-iptables-nft.json');
    expect(brief(users)).toEqual([
      ['ip', 'filter', 'INPUT', 2, 'xt-conntrack'],
      ['ip', 'nat', 'POSTROUTING', undefined, 'nat'],
      ['ip', 'nat', 'POSTROUTING', 2, 'nat'],
      // nft -j drops xt options, so CT --notrack looks like any CT template.
      ['ip', 'raw', 'PREROUTING', 2, 'xt-conntrack'],
    ]);
    expect(users.map((u) => u.detail)).toEqual([
      'xt match conntrack accept',
      'type nat hook postrouting priority 100',
      'oifname eth0 xt target MASQUERADE',
      'udp dport 53 xt target CT (options hidden by nft -j; may be --notrack)',
    ]);
    // Text listing of the same ruleset translates them; JSON does not.
    expect(fixture('nft-iptables-nft.list.txt')).toContain('ct state new counter');
  });

  it('also recognises translated native expressions of iptables-nft rules', () => {
    const doc = {
      nftables: [
        { rule: { family: 'ip', table: 'filter', chain: 'INPUT', handle: 7, expr: [
          { match: { op: 'in', left: { ct: { key: 'state' } }, right: 'new' } },
          { counter: { packets: 0, bytes: 0 } },
          { accept: null },
        ] } },
        { rule: { family: 'ip', table: 'nat', chain: 'POSTROUTING', handle: 8, expr: [{ masquerade: null }] } },
      ],
    };
    expect(brief(analyzeNftJson(doc))).toEqual([
      ['ip', 'filter', 'INPUT', 7, 'ct-match'],
      ['ip', 'nat', 'POSTROUTING', 8, 'nat'],
    ]);
    expect(analyzeNftJson(doc)[0]?.detail).toBe('ct state new accept');
  });

  it('covers ct objects, ct count, ct mark/zone set, helper assignment, vmaps, synproxy and nat maps', () => {
    const users = nft('nft-mixed.json');
    expect(brief(users)).toEqual([
      ['inet', 't', '*', undefined, 'helper'], // ct helper ftp-standard
      ['inet', 't', '*', undefined, 'ct-match'], // ct timeout aggressive
      ['inet', 't', '*', undefined, 'ct-match'], // ct expectation e
      ['inet', 't', 'pre', undefined, 'nat'],
      ['inet', 't', 'fw', 6, 'ct-match'],
      ['inet', 't', 'fw', 7, 'ct-match'],
      ['inet', 't', 'fw', 8, 'ct-match'],
      ['inet', 't', 'fw', 9, 'helper'],
      ['inet', 't', 'fw', 11, 'ct-match'],
      ['inet', 't', 'fw', 12, 'ct-match'],
      ['inet', 't', 'fw', 13, 'ct-match'],
      // handle 14 (ip daddr 192.0.2.1 accept) needs no conntrack
      ['inet', 't', 'pre', 16, 'nat'],
      ['inet', 't', 'pre', 17, 'nat'],
    ]);
    expect(users.map((u) => u.detail)).toEqual([
      'ct helper ftp-standard { type "ftp" protocol tcp }',
      'ct timeout aggressive { protocol tcp }',
      'ct expectation e { protocol tcp }',
      'type nat hook prerouting priority -100',
      'ct count over 10 drop',
      'ct mark set 16',
      'meta mark set ct mark',
      'tcp dport 21 ct helper set "ftp-standard"',
      'ct state vmap { invalid : drop, established : accept, related : accept }',
      'ct status dnat accept',
      'tcp dport 8080 synproxy',
      'ip daddr 192.0.2.1 dnat to tcp dport map { 80 : 10.0.0.2 }',
      'tcp dport 3 redirect to :3128',
    ]);
  });

  it('reports flowtables and flow offload rules (shape per libnftables-json(5); this kernel lacks flowtables)', () => {
    const doc = {
      nftables: [
        { flowtable: { family: 'inet', name: 'ft', table: 'f', handle: 2, hook: 'ingress', prio: 0, dev: ['eth0', 'eth1'] } },
        { rule: { family: 'inet', table: 'f', chain: 'forward', handle: 5, expr: [
          { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
          { flow: { op: 'add', flowtable: '@ft' } },
        ] } },
      ],
    };
    const users = analyzeNftJson(doc);
    expect(brief(users)).toEqual([
      ['inet', 'f', '*', undefined, 'flowtable'],
      ['inet', 'f', 'forward', 5, 'flowtable'],
    ]);
    expect(users.map((u) => u.detail)).toEqual([
      'flowtable ft { hook ingress devices = { eth0, eth1 } }',
      'meta l4proto tcp flow add @ft',
    ]);
  });

  it('throws a one-line Error for anything that is not an nft JSON document', () => {
    for (const bad of [null, undefined, 42, 'nftables', [], {}, { nftables: {} }, { nftables: 'x' }]) {
      expect(() => analyzeNftJson(bad)).toThrowError(/^not an nft JSON ruleset/);
    }
    try {
      analyzeNftJson({ foo: 1 });
    } catch (e) {
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).not.toContain('\n');
    }
  });

  it('ignores unexpected nested shapes without throwing', () => {
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 500; i++) cur = (cur.x = {}) as Record<string, unknown>;
    const doc = {
      nftables: [
        null,
        7,
        'rule',
        [],
        { rule: null },
        { rule: { family: 'ip' } }, // no expr
        { rule: { family: 'ip', table: 't', chain: 'c', handle: 'nine', expr: 'ct state' } },
        { rule: { table: 't', chain: 'c', handle: 3, expr: [null, 1, 'x', [], { match: null }, { xt: 'conntrack' }, { ct: 5 }, deep] } },
        { rule: { family: 'ip', table: 't', chain: 'c', handle: Number.NaN, expr: [{ match: { left: { ct: {} }, right: { set: null } } }, { dnat: 'weird' }] } },
        { chain: { type: 'nat' } },
        { chain: { name: 'c', type: 'filter' } },
        { 'ct helper': 'ftp' },
        { flowtable: { dev: 3 } },
        { set: { name: 's', type: 'ct_state' } },
        { unknown: { whatever: true } },
      ],
    };
    let users: ConntrackUser[] = [];
    expect(() => (users = analyzeNftJson(doc))).not.toThrow();
    expect(users).toEqual([
      { source: 'nft', family: 'ip', table: 't', chain: 'c', kind: 'ct-match', detail: 'ct ? dnat' },
      { source: 'nft', family: 'ip', table: 't', chain: 'c', kind: 'nat', detail: 'ct ? dnat' },
      { source: 'nft', family: '?', table: '?', chain: '?', kind: 'nat', detail: 'type nat hook ? priority ?' },
      { source: 'nft', family: '?', table: '?', chain: '*', kind: 'flowtable', detail: 'flowtable ? { hook ? devices = { 3 } }' },
    ]);
    expect(() => summarize(users)).not.toThrow();
  });
});

describe('analyzeIptablesSave', () => {
  it('reads iptables-legacy-save: state, connlimit, helper, connmark, CT, and the nat table', () => {
    // filter: -m state --state RELATED,ESTABLISHED -j ACCEPT; -i lo -j ACCEPT;
    //         ssh -m connlimit ... -m comment "ssh flood" -j REJECT; FORWARD -m helper --helper ftp
    // nat:    POSTROUTING -o eth0 -j MASQUERADE; PREROUTING -j DNAT
    // raw:    -j CT --notrack; -j CT --helper ftp
    // mangle: -j CONNMARK --restore-mark; -m connmark ! --mark 0x0
    const users = analyzeIptablesSave(fixture('iptables-legacy-save.txt'), 'iptables-legacy');
    expect(users.map((u) => [u.source, u.family, u.table, u.chain, u.handle, u.kind, u.detail])).toEqual([
      ['iptables-legacy', 'ip', 'mangle', 'PREROUTING', undefined, 'connmark', '-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff'],
      ['iptables-legacy', 'ip', 'mangle', 'PREROUTING', undefined, 'connmark', '-m connmark ! --mark 0x0'],
      ['iptables-legacy', 'ip', 'raw', 'PREROUTING', undefined, 'notrack', '-j CT --notrack'],
      ['iptables-legacy', 'ip', 'raw', 'PREROUTING', undefined, 'helper', '-j CT --helper ftp'],
      ['iptables-legacy', 'ip', 'nat', '*', undefined, 'nat', '*nat table loaded (chains PREROUTING,INPUT,OUTPUT,POSTROUTING)'],
      ['iptables-legacy', 'ip', 'nat', 'PREROUTING', undefined, 'nat', '-j DNAT --to-destination 10.0.0.2:80'],
      ['iptables-legacy', 'ip', 'nat', 'POSTROUTING', undefined, 'nat', '-j MASQUERADE'],
      ['iptables-legacy', 'ip', 'filter', 'INPUT', undefined, 'xt-conntrack', '-m state --state RELATED,ESTABLISHED'],
      ['iptables-legacy', 'ip', 'filter', 'INPUT', undefined, 'xt-conntrack', '-m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr'],
      ['iptables-legacy', 'ip', 'filter', 'FORWARD', undefined, 'helper', '-m helper --helper ftp'],
    ]);
    expect(keepsConntrackOn(users)).toBe(true);
    expect(summarize(users)[7]).toBe('iptables-legacy ip filter INPUT: xt-conntrack: -m state --state RELATED,ESTABLISHED');
  });

  it('reports an ip6tables *nat table that has only its built-in chains', () => {
    const users = analyzeIptablesSave(fixture('ip6tables-legacy-save.txt'), 'ip6tables-legacy');
    expect(users).toEqual([
      { source: 'ip6tables-legacy', family: 'ip6', table: 'filter', chain: 'INPUT', kind: 'xt-conntrack', detail: '-m conntrack --ctstate INVALID', verdict: 'drop' },
      { source: 'ip6tables-legacy', family: 'ip6', table: 'nat', chain: '*', kind: 'nat', detail: '*nat table loaded (chains PREROUTING,INPUT,OUTPUT,POSTROUTING)' },
    ]);
  });

  it('a raw table with only CT --notrack does not keep conntrack on', () => {
    // The fixture's *raw table without its CT --helper rule.
    const save = fixture('iptables-legacy-save.txt');
    const rawOnly = save
      .slice(save.indexOf('*raw'), save.indexOf('COMMIT', save.indexOf('*raw')) + 'COMMIT'.length)
      .split('\n')
      .filter((l) => !l.includes('CT --helper'))
      .join('\n');
    const users = analyzeIptablesSave(rawOnly, 'iptables-legacy');
    expect(users.map((u) => [u.table, u.chain, u.kind])).toEqual([['raw', 'PREROUTING', 'notrack']]);
    expect(keepsConntrackOn(users)).toBe(false);
  });

  it('handles counters, quoted comments, nat rules without NAT targets, and junk', () => {
    const text = [
      '*nat',
      ':POSTROUTING ACCEPT [0:0]',
      '[3:180] -A POSTROUTING -m comment --comment "keep -j MASQUERADE out" -j RETURN',
      'COMMIT',
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':conntrack - [0:0]',
      '-A INPUT -j conntrack', // a user chain named like a match
      '-A INPUT -m conntrack ! --ctstate NEW,ESTABLISHED ! -s 10.0.0.0/8 -j DROP',
      '-A',
      'garbage line',
      '-A INPUT -j',
      'COMMIT',
      '-A OUTSIDE -m state --state NEW', // outside any table
    ].join('\r\n');
    const users = analyzeIptablesSave(text, 'iptables-legacy');
    expect(users.map((u) => [u.table, u.chain, u.kind, u.detail])).toEqual([
      ['nat', '*', 'nat', '*nat table loaded (chains POSTROUTING)'],
      ['nat', 'POSTROUTING', 'nat', '-A POSTROUTING -m comment --comment "keep -j MASQUERADE out" -j RETURN'],
      ['filter', 'INPUT', 'xt-conntrack', '-m conntrack ! --ctstate NEW,ESTABLISHED'],
    ]);
    expect(analyzeIptablesSave('', 'iptables-legacy')).toEqual([]);
    expect(analyzeIptablesSave(undefined as unknown as string, 'iptables-legacy')).toEqual([]);
  });
});

describe('readRuleset', () => {
  it('records an error instead of throwing for a namespace it cannot open', () => {
    const r = readRuleset('/nonexistent/ctop-test-netns');
    expect(r.users).toEqual([]);
    expect(r.sources).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^cannot open network namespace \/nonexistent\/ctop-test-netns: /);
  });
});
