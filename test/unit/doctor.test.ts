/** The doctor report from fixtures: what a namespace's counts and ruleset say about conntrack there. */
import { describe, expect, it } from 'vitest';
import { doctorReport } from '../../src/model/doctor.js';
import { formatDoctor } from '../../src/format/doctorText.js';
import { ZERO_STATS } from '../../src/model/sample.js';
import type { RulesetReading } from '../../src/model/ruleset.js';
import { sample } from '../support/sample.js';

const kernel = { release: '6.18.0', btf: '/sys/kernel/btf/vmlinux', lockdown: 'integrity' };
const ctMatch: RulesetReading = {
  users: [{ source: 'nft', family: 'inet', table: 'filter', chain: 'input', handle: 4, kind: 'ct-match', detail: 'ct state established,related accept' }],
  chains: [],
  sources: ['nft -j list ruleset'],
  errors: [],
};
const empty: RulesetReading = { users: [], chains: [], sources: ['nft -j list ruleset'], errors: [] };

describe('doctorReport', () => {
  const s = sample({
    namespaces: [
      { inode: 1, name: 'host', count: 0, stats: { ...ZERO_STATS }, links: 4 },
      { inode: 2, name: 'pid 42 (nginx)', count: 0, stats: { ...ZERO_STATS, found: 3 }, links: 4 },
      { inode: 3, name: 'pid 43 (idle)', count: 0, stats: { ...ZERO_STATS }, links: 4 },
    ],
    netnsErrors: [{ name: 'pid 44 (gone)', error: 'No such file or directory' }],
  });
  const r = doctorReport({ sample: s, rulesets: new Map([[1, ctMatch], [2, empty]]), host: 'web-1', kernel });

  it('busy from counts or statistics, kept on from the rules; a namespace without a reading says so', () => {
    expect(r.namespaces.map((n) => [n.name, n.busy, n.keepsConntrackOn, n.rulesetErrors])).toEqual([
      ['host', false, true, []],
      ['pid 42 (nginx)', true, false, []],
      ['pid 43 (idle)', false, false, ['namespace vanished']],
    ]);
    expect(r.conntrackActive).toBe(true);
    expect(r).toMatchObject({ schema: 'ctop.doctor/v1', host: 'web-1', kernel, sysctl: { max: 1000, buckets: 256 }, notWatched: s.netnsErrors });
  });

  it('conntrack inactive when no namespace is busy and no rule uses it', () => {
    const idle = doctorReport({ sample: sample(), rulesets: new Map([[1, empty]]), host: 'h', kernel });
    expect(idle.conntrackActive).toBe(false);
    expect(formatDoctor(idle)).toMatch(/conntrack active: no \(ctop never turns it on\)/);
  });

  it("text says how many runs the kernel skipped of a program that has skipped any", () => {
    const skipped = doctorReport({
      sample: sample({
        probe: {
          tier: 'fentry',
          programs: [
            { name: 'ctop_fe_confirm_exit', hook: 'fexit/__nf_conntrack_confirm', attached: true, skippedRuns: 26 },
            { name: 'ctop_fe_unlink', hook: 'fentry/__nf_ct_delete_from_lists', attached: true },
          ],
          refused: [],
        },
      }),
      rulesets: new Map([[1, empty]]),
      host: 'h',
      kernel,
    });
    const t = formatDoctor(skipped);
    expect(t).toMatch(/attached {2}ctop_fe_confirm_exit {2}fexit\/__nf_conntrack_confirm\n {4}skipped 26 runs: already running on that CPU/);
    expect(t).not.toMatch(/ctop_fe_unlink.*\n {4}skipped/);
  });

  it('text names the rules that keep conntrack on', () => {
    const t = formatDoctor(r);
    expect(t).toMatch(/^ctop doctor {2}web-1 {2}kernel 6\.18\.0$/m);
    expect(t).toMatch(/rules in host that use conntrack:\n {2}nft inet filter input \(handle 4\): ct-match: ct state established,related accept/);
    expect(t).toMatch(/not watched: pid 44 \(gone\): No such file or directory/);
  });
});
