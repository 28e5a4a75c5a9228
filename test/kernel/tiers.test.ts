/**
 * Tier fallback on the host kernel. CI's machine kind (6.18, lockdown
 * integrity, CONFIG_KPROBES off) refuses fentry programs at load (EPERM) and
 * kprobes at attach (ENOENT): ctop must fall back to the netfilter tier, say
 * why each better tier was refused in the kernel's words, refuse a forced tier
 * in one line, and leave no program behind. The kernels that take the
 * function tiers are covered by the VM matrix (matrix.test.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import type { DoctorReport } from '../../src/model/doctor.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { createLab, withConntrackMax } from '../lab/netns.js';
import { ROOT, ctopPrograms, expectOneLineError, killStrayClis, runCli, waitNoCtopPrograms } from '../support/cli.js';

afterEach(killStrayClis);

// The kprobe PMU exists only with CONFIG_KPROBES: its absence is why kprobes cannot attach here.
const kprobesCompiledOut = !existsSync('/sys/bus/event_source/devices/kprobe');

const FENTRY_REFUSED = { tier: 'fentry', reason: /refused to load the fentry programs: Operation not permitted \(step load, errno 1\)/ };
const KPROBE_REFUSED = {
  tier: 'kprobe',
  reason: /refused to attach ctop_kp_\w+ \(kprobe\/\w+\): No such file or directory \(step attach, errno 2\)/,
};

describe('probe tier fallback on this kernel', () => {
  it('this is the kernel the expectations are for (kprobes compiled out)', () => {
    expect(kprobesCompiledOut).toBe(true);
  });

  it('doctor: the netfilter tier runs, fentry and kprobe refused with the kernel error', async () => {
    const r = runCli(['doctor', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as DoctorReport;
    expect(d.probe.tier).toBe('netfilter');
    expect(d.probe.refused.map((x) => x.tier)).toEqual(['fentry', 'kprobe']);
    expect(d.probe.refused[0]!.reason).toMatch(FENTRY_REFUSED.reason);
    expect(d.probe.refused[1]!.reason).toMatch(KPROBE_REFUSED.reason);
    const text = runCli(['doctor']);
    expect(text.stdout).toMatch(/probe tier in use: netfilter/);
    expect(text.stdout).toMatch(/refused\s+tier fentry: .*Operation not permitted/);
    expect(text.stdout).toMatch(/refused\s+tier kprobe: .*No such file or directory/);
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('snapshot: probe.tier and the refusals are in the JSON', async () => {
    // snapshot wants conntrack on somewhere: the lab's namespaces have a ct rule
    const lab = createLab();
    let r;
    try {
      r = runCli(['snapshot', '--json', '--duration', '1s', '--netns', lab.srv]);
    } finally {
      lab.destroy();
    }
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.probe.tier).toBe('netfilter');
    expect(s.probe.refused.map((x) => x.tier)).toEqual(['fentry', 'kprobe']);
    expect(s.probe.refused[0]!.reason).toMatch(FENTRY_REFUSED.reason);
    expect(s.probe.refused[1]!.reason).toMatch(KPROBE_REFUSED.reason);
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  for (const forced of [FENTRY_REFUSED, KPROBE_REFUSED]) {
    it(`--tier ${forced.tier}: a one-line refusal with the kernel's error, nothing left loaded`, async () => {
      const r = runCli(['snapshot', '--json', '--duration', '1s', '--tier', forced.tier]);
      expect(r.code).toBe(ExitCode.kernel);
      const e = expectOneLineError(r.stderr);
      expect(e.message).toMatch(new RegExp(`the ${forced.tier} tier was forced but the kernel refused it: `));
      expect(e.message).toMatch(forced.reason);
      expect(e.hint).toMatch(/ctop doctor/);
      // a kprobe tier that loaded but could not attach must be unloaded again
      expect(await waitNoCtopPrograms()).toEqual([]);
      expect(ctopPrograms()).toEqual([]);
    });
  }

  it('ctop-selftest (the same native loader, no Node) makes the same choice', () => {
    const out = execFileSync(join(ROOT, 'tools', 'bin', 'ctop-selftest'), ['probe'], { encoding: 'utf8', timeout: 60_000 });
    const r = JSON.parse(out) as { tier: string; refused: { tier: string; step: string; errno: number }[] };
    expect(r.tier).toBe('netfilter');
    expect(r.refused.map((x) => [x.tier, x.step, x.errno])).toEqual([
      ['fentry', 'load', 1],
      ['kprobe', 'attach', 2],
    ]);
  });

  it('the matrix scenario on this kernel: the netfilter tier counts inserts and refusals exactly', async () => {
    // ctop-selftest lowers the global nf_conntrack_max to 32 and puts the old
    // value back itself; withConntrackMax restores it even if it were killed
    const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim());
    const r = await withConntrackMax(max, () =>
      spawnSync(join(ROOT, 'tools', 'bin', 'ctop-selftest'), ['scenario', '--tier', 'netfilter'], { encoding: 'utf8', timeout: 120_000 }),
    );
    expect(Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim())).toBe(max);
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { tier: string; ok: boolean; checks: { name: string; ok?: boolean; notCountedBy?: string }[] };
    expect(res.tier).toBe('netfilter');
    expect(res.ok).toBe(true);
    const failed = res.checks.filter((c) => c.ok === false);
    expect(failed).toEqual([]);
    for (const name of ['inserts total', 'inserts udp/7200', 'drops total = refused flows', 'drop tuples udp/7300 (each refused flow, once)']) {
      expect(res.checks.find((c) => c.name === name)?.ok, name).toBe(true);
    }
    // what this tier cannot see is listed, not silently passed
    expect(res.checks.filter((c) => c.notCountedBy === 'netfilter').map((c) => c.name)).toEqual([
      'early drops',
      'deletes',
      'entries per port',
      'insert_failed',
      'clashes',
    ]);
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
