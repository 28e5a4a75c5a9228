/**
 * A census interrupted by Ctrl-C (SIGINT) or SIGTERM at any moment of its
 * walk or dump, on a table of 100,000 entries: it ends by the signal (128+N
 * where ctop's handler ran), or 0 if it finished first; never a stack trace; it
 * leaves nothing behind: no BPF program or map, and not the private
 * namespace (ctop-census-PID) the walk makes to find the table on a quiet
 * host. The delays spread over the whole census (about 1.5 s here).
 */
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createLab, withConntrackMax, type Lab } from '../lab/netns.js';
import { CLI, ROOT, waitNoCtopPrograms } from '../support/cli.js';

const ENTRIES = 100_000;

function ctopNamespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('ctop-census-'));
}

describe('census interrupted', () => {
  let lab: Lab;
  let restore: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    lab = createLab();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // room for the entries (the limit is global; put back afterwards)
    const max = Number(execFileSync('cat', ['/proc/sys/net/netfilter/nf_conntrack_max'], { encoding: 'utf8' }).trim());
    const running = withConntrackMax(Math.max(max, 2 * ENTRIES), () => held);
    restore = async () => {
      release();
      await running;
    };
    const r = JSON.parse(lab.exec(lab.srv, [join(ROOT, 'tools', 'bin', 'flood'), 'new', '--dst', lab.srvAddr4, '--port', '7600', '--count', String(ENTRIES), '--max-ms', '30000'], { timeoutMs: 60_000 })) as { sent: number };
    expect(r.sent).toBe(ENTRIES);
  });

  afterAll(async () => {
    lab?.destroy();
    await restore?.();
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    for (const delayMs of signal === 'SIGINT' ? [0, 300, 500, 700, 900, 1100, 1300, 1600, 2000] : [500, 900, 1300]) {
      it(`${signal} ${delayMs} ms into the census`, async () => {
        const proc = spawn(process.execPath, [CLI, 'census', '--netns', lab.srv, '--occupancy', 'ctnetlink'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        proc.stdout.resume();
        const done = new Promise<{ code: number | null; stderr: string }>((res) => proc.on('close', (c) => res({ code: c, stderr })));
        await new Promise((r) => setTimeout(r, delayMs));
        proc.kill(signal);
        const r = await done;
        // before Node has set its handlers the signal's default action ends it (code null): also fine, if nothing is left
        expect([code, 0, null], r.stderr).toContain(r.code);
        expect(r.stderr).not.toMatch(/\bat .*:\d+:\d+/);
        expect(await waitNoCtopPrograms()).toEqual([]);
        expect(ctopNamespaces()).toEqual([]);
      });
    }
  }
});
