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
 *
 * Each failed insert also counts the kernel's `drop`, and its SYN is freed
 * with NETFILTER_DROP still carrying its entry: the drop program must take
 * those increments off without counting a table-full drop, or the untracked
 * drops that follow in the window (an nft rule before conntrack) would be
 * attributed as table-full drops. So: 20 such drops after the race, and the
 * window's attributed drops must be 0.
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
      const { done } = await startCli(['snapshot', '--json', '--top', '0', '--duration', '10s', '--netns', ns], /sampling for/);
      const clash = (args: string[]) => execFileSync('ip', ['netns', 'exec', ns, join(ROOT, 'tools', 'bin', 'clash'), '--dst', '198.18.0.1', ...args], { encoding: 'utf8', timeout: 30_000 });
      const sent = JSON.parse(clash(['--proto', 'tcp', '--port', '9999', '--flows', String(FLOWS), '--max-ms', '6000'])) as { sent: number; refused: number; errors: number };
      // then untracked drops: a rule at raw priority, before conntrack, on the way out
      lab.exec(ns, ['nft', '-f', '-'], { input: 'table ip untracked {\n chain out { type filter hook output priority -300; udp dport 9998 counter drop; }\n}\n' });
      const untracked = JSON.parse(clash(['--proto', 'udp', '--port', '9998', '--flows', '10', '--max-ms', '2000'])) as { refused: number };
      const ruleDrops = Number(/counter packets (\d+)/.exec(lab.exec(ns, ['nft', 'list', 'table', 'ip', 'untracked']))?.[1]);
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
      // the untracked drops happened inside the window, and none of the window's drops is table-full
      expect(ruleDrops).toBe(20);
      expect(untracked.refused).toBe(20);
      expect(s.totals.dropsAttributed).toBe(0);
    } finally {
      killStrayClis();
      lab.destroy();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
