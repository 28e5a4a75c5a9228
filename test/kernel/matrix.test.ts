/**
 * The kernel matrix's second kernel: Debian 12's 6.1 in qemu (TCG), where the
 * fentry and kprobe tiers load and attach. test/matrix/run-guest.sh builds the
 * guest, runs ctop-selftest in it and checks every count exactly; a guest
 * that does not boot or does not finish is a failure, never a skip.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runLong } from '../support/cli.js';

const GUEST_BOUND_S = 300;

describe('kernel matrix: Debian 6.1 guest', () => {
  it(
    'fentry is chosen; the fentry and kprobe tiers count inserts, refusals (from kfree_skb, and from the allocation probes of the fallback), evictions, deletions, entries, roles, clashes and failed inserts exactly, and no entry counted live that is gone when traffic runs while the programs attach',
    async () => {
      const r = await runLong('bash', [join(ROOT, 'test', 'matrix', 'run-guest.sh')], {
        timeoutMs: (GUEST_BOUND_S + 120) * 1000,
        env: { ...process.env, CTOP_GUEST_TIMEOUT_S: String(GUEST_BOUND_S) },
      });
      const out = `${r.stdout}\n${r.stderr}`;
      if (r.code !== 0) console.error(out);
      expect(r.code, out).toBe(0);
      for (const what of [
        'probe-auto', 'probe-netfilter', 'scenario-fentry', 'scenario-kprobe', 'scenario-fentry-alloc', 'scenario-kprobe-alloc',
        'roles-fentry', 'roles-kprobe',
        'race-fentry-udp', 'race-fentry-tcp', 'race-kprobe-udp', 'race-kprobe-tcp',
        'race-fentry-tcp-early', 'race-kprobe-tcp-early',
      ]) {
        expect(out).toMatch(new RegExp(`matrix: ok +6\\.1\\.\\S+ ${what}:`));
      }
    },
    (GUEST_BOUND_S + 180) * 1000,
  );
});
