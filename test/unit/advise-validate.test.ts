/** The before/after verdict of `ctop validate`, from hand-built windows. */
import { describe, expect, it } from 'vitest';
import { counterDelta, countersByComment, validate, type ValidationWindow } from '../../src/advise/validate.js';

const t = { proto: 'udp' as const, port: 5000, role: 'server' as const };

function w(over: Partial<ValidationWindow>): ValidationWindow {
  return { durationMs: 2000, insertsByPort: {}, packetsByComment: {}, entriesByPort: { 'udp/5000': 400 }, count: 500, max: 1000, ...over };
}

const before = w({ insertsByPort: { 'udp/5000': 400, 'udp/6000': 100 }, packetsByComment: { 'ctop server udp/5000 dport': 400, 'ctop server udp/5000 sport': 400 } });

describe('validate', () => {
  it('passes when inserts fall to zero while packets keep flowing through the notrack rules', () => {
    const after = w({ insertsByPort: { 'udp/6000': 100 }, packetsByComment: { 'ctop server udp/5000 dport': 390, 'ctop server udp/5000 sport': 390 }, entriesByPort: { 'udp/5000': 380 }, count: 480 });
    const v = validate([t], before, after);
    expect(v.ok).toBe(true);
    expect(v.ports[0]).toEqual({
      port: 'udp/5000',
      before: { insertsPerSec: 200, packetsPerSec: 400, requestsPerSec: 200, repliesPerSec: 200, entries: 400 },
      after: { insertsPerSec: 0, packetsPerSec: 390, requestsPerSec: 195, repliesPerSec: 195, entries: 380 },
      untrackedPackets: 780,
      leftoverEntries: 380,
      ok: true,
      problems: [],
    });
    expect(v.fill).toEqual({ before: 0.5, after: 0.48, countBefore: 500, countAfter: 480 });
  });
  it('fails when inserts remain, when no packet matched, and when traffic stopped', () => {
    const stillTracked = validate([t], before, w({ insertsByPort: { 'udp/5000': 10 }, packetsByComment: { 'ctop server udp/5000 dport': 5 } }));
    expect(stillTracked.ok).toBe(false);
    expect(stillTracked.ports[0]!.problems[0]).toMatch(/^10 inserts after the change/);
    const silent = validate([t], before, w({}));
    expect(silent.ports[0]!.problems).toEqual([
      expect.stringMatching(/matched no packet/),
      expect.stringMatching(/traffic stopped after the change/),
    ]);
  });
  it('reads rule counters by comment from nft JSON and takes deltas', () => {
    const json = {
      nftables: [
        { metainfo: {} },
        { rule: { comment: 'ctop server udp/5000 dport', expr: [{ match: {} }, { counter: { packets: 7, bytes: 300 } }, { notrack: null }] } },
        { rule: { expr: [{ counter: { packets: 99, bytes: 1 } }] } },
      ],
    };
    expect(countersByComment(json)).toEqual({ 'ctop server udp/5000 dport': 7 });
    expect(countersByComment(null)).toEqual({});
    expect(counterDelta({ a: 5 }, { a: 9, b: 2 })).toEqual({ a: 4, b: 2 });
  });
});
