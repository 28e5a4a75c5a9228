// Proves the netns lab against the real kernel: exact conntrack entry counts in the
// server namespace, none in the client one, and nf_conntrack_max always restored.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LOADGEN, cleanupStaleLabs, createLab, ctCount, ctStat, holdTcp, runLoad, startServer,
  withConntrackMax, type Lab,
} from './netns.js';

describe('netns lab', () => {
  let lab: Lab | undefined;

  beforeAll(() => {
    cleanupStaleLabs();
    lab = createLab();
  });
  afterAll(() => {
    lab?.destroy();
    lab?.destroy(); // idempotent by contract
  });

  it('counts exactly the flows it sent, only in the server namespace', async () => {
    const l = lab!;
    expect(l.netnsInode(l.cli)).toBeGreaterThan(0);
    expect(l.netnsInode(l.cli)).not.toBe(l.netnsInode(l.srv));

    const server = await startServer(l, { udp: [5000], tcp: [5001] });
    let stats;
    try {
      const u4 = await runLoad(l, ['--udp', `${l.srvAddr4}:5000`, '--flows', '50', '--max-ms', '20000']);
      expect(u4).toMatchObject({ mode: 'udp', sent: 50, errors: 0 });
      const t4 = await runLoad(l, ['--tcp', `${l.srvAddr4}:5001`, '--flows', '20', '--max-ms', '20000']);
      expect(t4).toMatchObject({ mode: 'tcp', established: 20, sent: 20, errors: 0 });
      const u6 = await runLoad(l, ['--udp', `[${l.srvAddr6}]:5000`, '--flows', '10', '--max-ms', '20000']);
      expect(u6).toMatchObject({ mode: 'udp', sent: 10, errors: 0 });

      expect(ctCount(l.srv, ['-f', 'ipv4', '-p', 'udp', '--dport', '5000'])).toBe(50);
      expect(ctCount(l.srv, ['-f', 'ipv6', '-p', 'udp', '--dport', '5000'])).toBe(10);
      expect(ctCount(l.srv, ['-f', 'ipv4', '-p', 'tcp', '--dport', '5001'])).toBe(20);
      expect(ctStat(l.cli).count).toBe(0); // conntrack never enabled in the client ns

      // --hold keeps connections ESTABLISHED (the 20 above are in TIME_WAIT by now).
      const held = await holdTcp(l, `${l.srvAddr4}:5001`, 5, { maxMs: 20_000 });
      expect(ctCount(l.srv, ['-f', 'ipv4', '-p', 'tcp', '--dport', '5001', '--state', 'ESTABLISHED'])).toBe(5);
      expect(await held.release()).toMatchObject({ mode: 'tcp-hold', established: 5, stillOpen: 5, errors: 0 });

      const st = ctStat(l.srv);
      expect(st.count).toBeGreaterThanOrEqual(85);
      expect(st).toMatchObject({ drop: 0, earlyDrop: 0, insertFailed: 0 });
    } finally {
      stats = await server.stop();
    }
    expect(stats).toMatchObject({ mode: 'listen', received: 60, accepted: 25, errors: 0 });
  }, 60_000);

  it('loadgen rejects bad arguments with exit 2 and one stderr line', () => {
    const r = spawnSync(process.execPath, [LOADGEN, '--udp', '198.18.0.2:5000', '--flows', 'many'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--flows/);
  });

  it('withConntrackMax restores the old value even when fn throws', async () => {
    const path = '/proc/sys/net/netfilter/nf_conntrack_max';
    const before = fs.readFileSync(path, 'utf8').trim();
    const value = Number(before) === 4096 ? 4097 : 4096;
    await expect(
      withConntrackMax(value, () => {
        expect(fs.readFileSync(path, 'utf8').trim()).toBe(String(value));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fs.readFileSync(path, 'utf8').trim()).toBe(before);
  });
});
