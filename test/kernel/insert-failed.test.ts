/**
 * Failed inserts on the real kernel: tools/bin/clash --proto tcp sends the
 * SYN of each of 40,000 new TCP flows from two threads on two CPUs at once
 * (raw sockets, the same 4-tuple from both). When both packets reach
 * __nf_conntrack_confirm() unconfirmed, the second finds the first's tuple
 * confirmed; TCP does not set allow_clash, so nf_ct_resolve_clash() cannot
 * resolve it: the packet is dropped and the kernel counts drop and
 * insert_failed. Measured 2026-12-01 on the 2-core VM: 3 in 2,000 flows,
 * 32 in 20,000, and 87, 21, 131 in three runs of 40,000 (2-3 s each), so
 * 40,000 flows make it > 0; the sender stops at 6 s, inside ctop's 8 s window.
 *
 * ctop's insert_failed (totals.insertFailed and the namespace's row) comes
 * from the kernel's own per-CPU statistics read over ctnetlink at the
 * window's two ends, summed over CPUs; on the netfilter tier the BPF program
 * runs before the confirm step and cannot see the failure. The check: ctop's
 * figure = the kernel's `conntrack -S` insert_failed over the window, and the
 * sender saw exactly that many SYNs refused (EPERM from sendto).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { ROOT, killStrayClis, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { createLoopbackLab, ctCounters } from '../lab/netns.js';

const FLOWS = 40_000;

describe('failed inserts', () => {
  it('40,000 TCP SYNs raced on two CPUs: insert_failed > 0 and ctop reports exactly the kernel\'s figure', async () => {
    const lab = createLoopbackLab();
    const ns = lab.cli;
    try {
      const before = ctCounters(ns);
      const { done } = await startCli(['snapshot', '--json', '--top', '0', '--duration', '8s', '--netns', ns], /sampling for/);
      const sent = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, join(ROOT, 'tools', 'bin', 'clash'), '--proto', 'tcp', '--dst', '198.18.0.1', '--port', '9999', '--flows', String(FLOWS), '--max-ms', '6000'], { encoding: 'utf8', timeout: 30_000 })) as { sent: number; refused: number; errors: number };
      const r = await done;
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as SnapshotV1;
      const after = ctCounters(ns);
      const failed = (after.insert_failed ?? 0) - (before.insert_failed ?? 0);
      // the scenario happened: every SYN was sent or refused, and the kernel failed inserts
      expect(sent.errors).toBe(0);
      expect(sent.sent + sent.refused).toBe(2 * FLOWS);
      expect(failed).toBeGreaterThan(0);
      // each failed insert dropped its SYN: the sender saw exactly that many refusals
      expect(sent.refused).toBe(failed);
      expect((after.drop ?? 0) - (before.drop ?? 0)).toBe(failed);
      // ctop's figures are the kernel's
      expect(s.probe.tier).toBe('netfilter');
      expect(s.totals.insertFailed).toBe(failed);
      expect(s.namespaces).toHaveLength(1);
      expect(s.namespaces[0]!.name).toBe(ns);
      expect(s.namespaces[0]!.insertFailed).toBe(failed);
      expect(s.totals.drops).toBe(failed);
    } finally {
      killStrayClis();
      lab.destroy();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
