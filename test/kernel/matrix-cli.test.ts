/**
 * The real CLI on the kernel's function tiers: Debian 12's 6.1 in qemu (TCG),
 * where fentry and kprobe load. test/matrix/run-guest-cli.sh puts Node, ctop
 * and the addon in the guest, runs `ctop snapshot --json` on each tier during
 * known traffic into a full table, and check-guest-cli.mjs compares every
 * figure with the traffic and the kernel's statistics; then, per tier, entries
 * made before ctop attaches, `ctop record` (one census at attach, carried
 * forward by the kernel's per-port counts) and churn (deleted, expired, new):
 * the last window's occupancy per port and in total must equal `conntrack -L`
 * and nf_conntrack_count. A guest that does not boot or finish is a failure,
 * never a skip.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runLong } from '../support/cli.js';

const GUEST_BOUND_S = 900;

describe('kernel matrix: the CLI in the Debian 6.1 guest', () => {
  it(
    'snapshot --json on fentry and kprobe: inserts, drops, early drops, deletes and entries equal the kernel\'s; record\'s occupancy after churn equals conntrack -L and nf_conntrack_count',
    async () => {
      const r = await runLong('bash', [join(ROOT, 'test', 'matrix', 'run-guest-cli.sh')], {
        timeoutMs: (GUEST_BOUND_S + 120) * 1000,
        env: { ...process.env, CTOP_GUEST_TIMEOUT_S: String(GUEST_BOUND_S) },
      });
      const out = `${r.stdout}\n${r.stderr}`;
      if (r.code !== 0) console.error(out);
      expect(r.code, out).toBe(0);
      for (const tier of ['fentry', 'kprobe']) {
        expect(out).toMatch(new RegExp(`matrix-cli: ok +6\\.1\\.\\S+ ${tier}: probe tier`));
        expect(out).toMatch(new RegExp(`matrix-cli: ok +6\\.1\\.\\S+ ${tier}: occupancy: namespace entries = nf_conntrack_count: 130`));
        expect(out).not.toMatch(new RegExp(`matrix-cli: FAIL .* ${tier}:`));
      }
    },
    (GUEST_BOUND_S + 180) * 1000,
  );
});
