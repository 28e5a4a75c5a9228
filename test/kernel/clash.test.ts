/**
 * Insertion clashes on the real kernel: tools/bin/clash sends the first
 * datagram of each of 20,000 new UDP flows from two threads on two CPUs at
 * once, so two unconfirmed entries race to the confirm step and the kernel
 * resolves the clash (clash_resolve). What ctop reports is checked against
 * the kernel's own view: entries (`conntrack -C`), clash_resolve and
 * insert_failed (`conntrack -S`).
 *
 * On the netfilter tier ctop's program runs just before the confirm step and
 * cannot see its outcome, so a clash's losing entry is counted as an insert
 * too: inserts = entries + clash_resolve, exactly (README, "Insertion clashes").
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { ROOT, killStrayClis, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { createLoopbackLab, ctCounters } from '../lab/netns.js';

const FLOWS = 20_000;

describe('insertion clashes', () => {
  it('20,000 flows raced on two CPUs: clash_resolve > 0, ctop reports the kernel\'s figure; netfilter-tier inserts = entries + clash_resolve', async () => {
    const lab = createLoopbackLab();
    const ns = lab.cli;
    try {
      const before = ctCounters(ns);
      const { done } = await startCli(['snapshot', '--json', '--top', '0', '--duration', '6s', '--netns', ns], /sampling for/);
      const sent = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, join(ROOT, 'tools', 'bin', 'clash'), '--dst', '198.18.0.1', '--port', '9999', '--flows', String(FLOWS), '--max-ms', '30000'], { encoding: 'utf8', timeout: 60_000 })) as { sent: number; errors: number };
      expect(sent).toMatchObject({ sent: 2 * FLOWS, errors: 0 });
      const r = await done;
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as SnapshotV1;
      const after = ctCounters(ns);
      const entries = Number(execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-C'], { encoding: 'utf8' }).trim());
      const clashes = (after.clash_resolve ?? 0) - (before.clash_resolve ?? 0);
      const failed = (after.insert_failed ?? 0) - (before.insert_failed ?? 0);
      // the scenario happened: one entry per flow, and the kernel resolved clashes
      expect(entries).toBe(FLOWS);
      expect(clashes).toBeGreaterThan(0);
      // ctop's figures are the kernel's
      expect(s.totals.clashResolve).toBe(clashes);
      expect(s.totals.insertFailed).toBe(failed);
      expect(s.namespaces[0]!.count).toBe(entries);
      expect(s.probe.tier).toBe('netfilter');
      const port = s.ports.find((p) => p.port === 9999 && p.proto === 'udp')!;
      expect(port.inserts).toBe(entries + clashes + failed);
      expect(s.totals.inserts).toBe(entries + clashes + failed);
    } finally {
      killStrayClis();
      lab.destroy();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
