/**
 * The live screen's NOTRACK panel and `n` overlay come from advise's planner:
 * for the same window and the same namespace readings, the screen's
 * candidates (roles, ranges, flags, rules) equal `ctop advise --json`'s, and
 * the keys drive the guarded change through the actions the command gives
 * (here a recording fake: the kernel side is test/kernel/tui-notrack.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/tui/controller.js';
import type { NotrackActions, NotrackStatus } from '../../src/tui/notrackPanel.js';
import { planAdvice, type NamespaceInput } from '../../src/advise/report.js';
import type { Candidate } from '../../src/advise/notrack.js';
import { analyzeNftJson, nftBaseChains } from '../../src/model/rulesetNft.js';
import type { SnapshotV1, WindowSource } from '../../src/model/snapshot.js';
import type { RoleCounts } from '../../src/model/roles.js';
import { fixtureWindow, LAB_NS } from '../support/tuiFixtures.js';

const plain = (tagged: string): string => tagged.replace(/\{\/?[a-z-]+\}/g, '').replace(/\{open\}/g, '{').replace(/\{close\}/g, '}');

/** The fixture window with roles, and a UDP service spread over 60000-60099 in the lab namespace. */
function window(): SnapshotV1 {
  const s = fixtureWindow(0);
  const roles = (r: Partial<RoleCounts>, n: number): RoleCounts => ({ server: 0, client: 0, local: 0, forward: 0, ...r, ...(Object.keys(r).length ? {} : { server: n }) });
  for (const p of s.ports) (p as typeof p & { roles: RoleCounts }).roles = p.port === 53 ? roles({ forward: p.inserts }, p.inserts) : roles({}, p.inserts);
  for (let port = 60000; port < 60100; port++) {
    s.ports.push({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port, inserts: 9, drops: 0, roles: roles({}, 9) } as (typeof s.ports)[number]);
  }
  const inserts = s.ports.reduce((a, p) => a + p.inserts, 0);
  s.totals.inserts = inserts;
  for (const n of s.namespaces) n.inserts = s.ports.filter((p) => p.netns === n.inode).reduce((a, p) => a + p.inserts, 0);
  return s;
}

function labInput(): NamespaceInput {
  const json: unknown = JSON.parse(readFileSync(new URL('../fixtures/ruleset/nft-stateful-drop.json', import.meta.url), 'utf8'));
  return { inode: LAB_NS, ruleset: { users: analyzeNftJson(json), chains: nftBaseChains(json), errors: [] }, helperAutoAssign: null, timeoutsS: {}, errors: [] };
}

function fakeActions(): NotrackActions & { calls: string[]; st: NotrackStatus | null } {
  const calls: string[] = [];
  const a = {
    calls,
    st: null as NotrackStatus | null,
    helpers: [],
    namespace: (inode: number) => (inode === LAB_NS ? labInput() : undefined),
    check: (inode: number, script: string) => {
      calls.push(`check ${inode} ${script.split('\n').filter((l) => /notrack comment/.test(l)).length} rules`);
      return null;
    },
    apply: async (inode: number, c: Candidate) => {
      calls.push(`apply ${inode} ${c.proto}/${c.port}-${c.portEnd} ${c.role}`);
      a.st = { kind: 'pending', port: `${c.proto}/${c.port}-${c.portEnd}`, secondsLeft: 29.2 };
    },
    confirm: async () => {
      calls.push('confirm');
      a.st = { kind: 'confirmed', port: 'udp/60000-60099' };
    },
    revert: async () => {
      calls.push('revert');
      a.st = { kind: 'reverted' };
    },
    status: () => a.st,
  };
  return a;
}

function controllerFor(s: SnapshotV1, actions?: NotrackActions): Controller {
  let given = false;
  const src: WindowSource = { label: 'test', next: () => (given ? undefined : ((given = true), s)), close: () => {} };
  const c = new Controller(src, 1000, { color: false }, actions);
  c.tick();
  return c;
}

describe('the live screen NOTRACK path', () => {
  it('equals `ctop advise --json` for the same window: candidates, roles, range, flags and rules', () => {
    const s = window();
    const actions = fakeActions();
    const live = controllerFor(s, actions).liveNotrack()!;
    const report = planAdvice({
      snapshot: s,
      host: { memBytes: 8 << 30, wordBits: 64, entryBytes: 320, helpers: [], modules: [] },
      kernelRelease: s.kernel,
      namespaces: new Map([[LAB_NS, labInput()]]),
      oneNamespace: false,
      role: 'auto',
      top: 5,
      errors: [],
    });
    const advised = JSON.parse(JSON.stringify(report)) as typeof report;
    const ns = advised.namespaces.find((n) => n.inode === LAB_NS)!;
    expect(live.inode).toBe(LAB_NS);
    expect(JSON.parse(JSON.stringify(live.advice))).toEqual(ns.notrack);
    // what the screen shows is that: the range first, udp/53 forwarded (both directions in prerouting) and flagged by the state rule
    expect(live.advice.candidates.map((c) => [`${c.proto}/${c.port}-${c.portEnd}`, c.role])).toEqual([
      ['udp/60000-60099', 'server'],
      ['udp/53-53', 'forward'],
      ['udp/123-123', 'server'],
    ]);
    const f = controllerFor(s, actions).frame(100, 40, { label: 'test' });
    const panel = f.notrack!.lines.map(plain);
    expect(panel[0]).toMatch(/^1 udp\/60000-60099 server\s+\d+\.\d%/);
    expect(panel[1]).toMatch(/^2 udp\/53 forward/);
  });

  it('n lists the candidates; ↑↓ picks; a shows the dry run, a again applies; c confirms and r reverts, the header counting down', async () => {
    const actions = fakeActions();
    const c = controllerFor(window(), actions);
    const text = () => c.frame(120, 60, { label: 'test' });
    c.key('n', 'n');
    let f = text();
    const overlay = () => f.overlay!.lines.map(plain).join('\n');
    expect(overlay()).toMatch(/> 1\. udp\/60000-60099  server/);
    expect(overlay()).toMatch(/udp dport 60000-60099 counter notrack comment "ctop udp\/60000-60099 prerouting dport"/);
    expect(overlay()).toMatch(/iptables-legacy -t raw -A PREROUTING -p udp -m udp --dport 60000:60099 -j CT --notrack/);
    c.key(undefined, 'down');
    f = text();
    expect(overlay()).toMatch(/> 2\. udp\/53  forward/);
    expect(overlay()).toMatch(/udp\/53: role forward \(100 % of new entries forwarded\)/);
    c.key(undefined, 'up');
    c.key('a', 'a');
    f = text();
    expect(actions.calls).toEqual([`check ${LAB_NS} 2 rules`]);
    expect(overlay()).toMatch(/Dry run: the script below passed `nft -c`/);
    c.key('a', 'a');
    await Promise.resolve();
    expect(actions.calls[1]).toBe(`apply ${LAB_NS} udp/60000-60099 server`);
    f = text();
    expect(plain(f.header)).toMatch(/NOTRACK udp\/60000-60099 rolls back in 30s: c confirm, r revert/);
    c.key('c', 'c');
    await Promise.resolve();
    expect(plain(text().header)).toMatch(/NOTRACK udp\/60000-60099 confirmed/);
    c.key('r', 'r');
    await Promise.resolve();
    expect(actions.calls.slice(2)).toEqual(['confirm', 'revert']);
    expect(plain(text().header)).toMatch(/NOTRACK reverted/);
  });

  it('a replay has no actions: the overlay shows rules, and a says the live kernel is needed', () => {
    const c = controllerFor(window());
    c.key('n', 'n');
    c.key('a', 'a');
    const f = c.frame(120, 60, { label: 'replay' });
    expect(plain(f.header)).toMatch(/NOTRACK: the live kernel is needed to change rules/);
    expect(f.overlay!.lines.map(plain).join('\n')).toMatch(/apply needs the live kernel, not a replay/);
  });
});
