/** The before/after verdict of `ctop validate`, namespace-wide, from hand-built windows. */
import { describe, expect, it } from 'vitest';
import { counterDelta, countersByComment, suggestRoles, validate, type ValidationWindow } from '../../src/advise/validate.js';
import { ruleComment, type NotrackTarget } from '../../src/advise/rules.js';
import type { RoleCounts, TrafficRole } from '../../src/model/roles.js';
import type { PortRow, TupleRow } from '../../src/model/snapshot.js';

const NS = 1;
const tg = (roles: TrafficRole[]): NotrackTarget => ({ proto: 'udp', port: 5353, portEnd: 5353, roles });

function row(port: number, inserts: number, roles?: Partial<RoleCounts>): PortRow & { roles?: RoleCounts } {
  return { netns: NS, family: 'ipv4', proto: 'udp', protoNum: 17, port, inserts, drops: 0, ...(roles ? { roles: { server: 0, client: 0, local: 0, forward: 0, ...roles } } : {}) };
}

function tuple(sport: number, dport: number, inserts = 1): TupleRow {
  return { netns: NS, family: 'ipv4', proto: 'udp', protoNum: 17, src: '198.18.1.1', sport, dst: '198.18.2.1', dport, inserts, drops: 0 };
}

const c = (hook: 'prerouting' | 'output', field: 'dport' | 'sport') => ruleComment(tg([]), { hook, field });

function w(over: Partial<ValidationWindow>): ValidationWindow {
  return { durationMs: 2000, ports: [], tuples: [], tupleMapFull: 0, packetsByComment: {}, entriesByPort: null, countStart: 500, countEnd: 500, max: 1000, ...over };
}

/** A router: 400 forwarded requests to udp/5353 and their 400 replies in 2 s, plus 100 other inserts. */
const before = w({
  ports: [row(5353, 400, { forward: 400 }), row(6000, 100, { forward: 100 })],
  tuples: Array.from({ length: 400 }, (_, i) => tuple(40000 + i, 5353)),
  packetsByComment: { [c('prerouting', 'dport')]: 400, [c('prerouting', 'sport')]: 400 },
  countStart: 500,
  countEnd: 1000,
});

describe('validate', () => {
  it('PASS: the traffic\'s entries in both directions fell to zero, the namespace cut is what was predicted, packets flow', () => {
    const after = w({
      ports: [row(6000, 100, { forward: 100 })],
      packetsByComment: { [c('prerouting', 'dport')]: 390, [c('prerouting', 'sport')]: 390 },
      countStart: 1000,
      countEnd: 900,
    });
    const v = validate([tg(['forward'])], before, after);
    expect(v.verdict).toBe('PASS');
    const t = v.targets[0]!;
    expect(t).toMatchObject({ port: 'udp/5353', role: 'forward', exempted: ['prerouting dport', 'prerouting sport'], entryCut: 1, untrackedPackets: 780, problems: [] });
    expect(t.before).toMatchObject({ requestEntriesPerSec: 200, replyEntriesPerSec: 0 });
    expect(v.namespace).toMatchObject({ predictedCut: 0.8, observedCut: 0.8, problems: [] });
    expect(v.namespace.before).toMatchObject({ insertsPerSec: 250, entriesSlopePerSec: 250, fill: 1 });
    expect(v.namespace.after).toMatchObject({ insertsPerSec: 50, entriesSlopePerSec: -50, fill: 0.9 });
  });

  it('FAIL: a one-way role leaves the replies creating entries; it says which direction and what to run', () => {
    // server role on a router: requests exempt in prerouting, replies (sport 5353) still tracked there
    const after = w({
      ports: [row(6000, 100, { forward: 100 }), ...Array.from({ length: 390 }, (_, i) => row(40000 + i, 1, { forward: 1 }))],
      tuples: Array.from({ length: 390 }, (_, i) => tuple(5353, 40000 + i)),
      packetsByComment: { [c('prerouting', 'dport')]: 390, [c('prerouting', 'sport')]: 390 },
    });
    const v = validate([tg(['server'])], before, after, 'ctop validate --port udp/5353 --netns rtr');
    expect(v.verdict).toBe('FAIL');
    const t = v.targets[0]!;
    expect(t.after.replyEntriesPerSec).toBe(195);
    expect(t.entryCut).toBe(0.025);
    expect(t.problems).toEqual([
      'replies still create entries (195/s with source port udp/5353, the one-way NOTRACK trap): PREROUTING sport (replies arriving: 390 packets, not exempted); exempt both directions: run `ctop validate --port udp/5353 --netns rtr --role forward`',
    ]);
  });

  it('FAIL: requests still tracked (client role forced on a server), traffic stopped, no packet matched', () => {
    const server = w({ ports: [row(5353, 400, { server: 400 })], packetsByComment: { [c('prerouting', 'dport')]: 400, [c('output', 'sport')]: 400 } });
    const wrong = validate([tg(['client'])], server, w({ ports: [row(5353, 400, { server: 400 })], packetsByComment: { [c('prerouting', 'dport')]: 400, [c('output', 'sport')]: 400 } }));
    expect(wrong.verdict).toBe('FAIL');
    expect(wrong.targets[0]!.problems[0]).toMatch(/^requests still create entries \(200\/s with destination port udp\/5353\): PREROUTING dport \(requests arriving: 400 packets, not exempted\).*--role server`$/);
    expect(wrong.targets[0]!.problems[1]).toMatch(/matched no packet/);
    const stopped = validate([tg(['server'])], server, w({ packetsByComment: { [c('prerouting', 'dport')]: 10 } }));
    expect(stopped.verdict).toBe('FAIL');
    expect(stopped.targets[0]!.problems).toEqual([expect.stringMatching(/^traffic stopped after the change \(OUTPUT sport carried packets before, none after\)/)]);
  });

  it('INCONCLUSIVE without traffic or without new entries before, never a pass', () => {
    const quiet = validate([tg(['server'])], w({}), w({}));
    expect(quiet.verdict).toBe('INCONCLUSIVE');
    expect(quiet.targets[0]!.problems[0]).toMatch(/no packets on udp\/5353 before the change/);
    const old = validate([tg(['server'])], w({ packetsByComment: { [c('prerouting', 'dport')]: 10 } }), w({ packetsByComment: { [c('prerouting', 'dport')]: 10 } }));
    expect(old.verdict).toBe('INCONCLUSIVE');
    expect(old.targets[0]!.problems[0]).toMatch(/no new entries on udp\/5353 before the change/);
  });

  it('FAIL when the namespace\'s insert rate did not fall by the predicted share', () => {
    const after = w({
      ports: [row(6000, 450, { forward: 450 })],
      packetsByComment: { [c('prerouting', 'dport')]: 390, [c('prerouting', 'sport')]: 390 },
    });
    const v = validate([tg(['forward'])], before, after);
    expect(v.targets[0]!.verdict).toBe('PASS');
    expect(v.verdict).toBe('FAIL');
    expect(v.namespace.problems[0]).toMatch(/fell by 10 %, but the exempted traffic made 80 % of its new entries/);
  });

  it('suggests the measured role, or the smallest role covering the directions that carried packets', () => {
    expect(suggestRoles(tg(['server']), before)).toEqual(['forward']);
    const noRoles = w({ ports: [row(5353, 10)], packetsByComment: { [c('output', 'dport')]: 10, [c('prerouting', 'sport')]: 10 } });
    expect(suggestRoles(tg(['server']), noRoles)).toEqual(['client']);
    const loop = w({ ports: [row(5353, 10)], packetsByComment: { [c('output', 'dport')]: 10, [c('prerouting', 'sport')]: 10, [c('prerouting', 'dport')]: 10, [c('output', 'sport')]: 10 } });
    expect(suggestRoles(tg(['server']), loop)).toEqual(['local']);
  });

  it('reads rule counters by comment from nft JSON and takes deltas', () => {
    const json = {
      nftables: [
        { metainfo: {} },
        { rule: { comment: 'ctop udp/5000 prerouting dport', expr: [{ match: {} }, { counter: { packets: 7, bytes: 300 } }, { notrack: null }] } },
        { rule: { expr: [{ counter: { packets: 99, bytes: 1 } }] } },
      ],
    };
    expect(countersByComment(json)).toEqual({ 'ctop udp/5000 prerouting dport': 7 });
    expect(countersByComment(null)).toEqual({});
    expect(counterDelta({ a: 5 }, { a: 9, b: 2 })).toEqual({ a: 4, b: 2 });
  });
});
