/**
 * `ctop snapshot` and `ctop doctor` end to end, as an operator runs them,
 * during known traffic.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import type { DoctorReport } from '../../src/model/doctor.js';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { expectOneLineError, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { killStrayClis } from '../support/cli.js';
import { afterEach as afterEachKill } from 'vitest';

// a failed assertion must not leave a ctop attached for the next test
afterEachKill(killStrayClis);

describe('ctop snapshot --json during a flood', () => {
  let lab: Lab;
  let stop: (() => Promise<unknown>) | undefined;

  beforeAll(async () => {
    lab = createLab();
    stop = (await startServer(lab, { udp: [8000, 8002], tcp: [8001] })).stop;
  });

  afterAll(async () => {
    await stop?.();
    lab?.destroy();
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('reports the flood ports with insert counts equal to the flows sent', async () => {
    const srv = lab.netnsInode(lab.srv);
    const { done } = await startCli(['snapshot', '--json', '--duration', '4s', '--top', '0'], /sampling for/);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:8000`, '--flows', '1000']);
    await runLoad(lab, ['--tcp', `${lab.srvAddr4}:8001`, '--flows', '100']);
    const r = await done;
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.schema).toBe('ctop.snapshot/v1');
    expect(s.probe.tier).toBe('netfilter');
    expect(s.probe.programs.every((p) => p.attached)).toBe(true);
    const mine = s.ports.filter((p) => p.netns === srv);
    expect(mine).toEqual([
      // received from the client namespace, delivered here: server; every entry
      // made is still held at the window's end (UDP 30 s, TCP TIME_WAIT 120 s)
      { netns: srv, family: 'ipv4', proto: 'udp', protoNum: 17, port: 8000, inserts: 1000, drops: 0, roles: { server: 1000, client: 0, local: 0, forward: 0 }, occupancy: 1000 },
      { netns: srv, family: 'ipv4', proto: 'tcp', protoNum: 6, port: 8001, inserts: 100, drops: 0, roles: { server: 100, client: 0, local: 0, forward: 0 }, occupancy: 100 },
    ]);
    expect(s.tuples.filter((t) => t.netns === srv)).toHaveLength(1100);
    expect(s.namespaces.find((n) => n.inode === srv)).toMatchObject({ count: 1100, inserts: 1100 });
    expect(s.rates.insertsPerSec).toBeGreaterThan(0);
    expect(s.table.max).toBeGreaterThan(0);
    expect(s.overflow).toMatchObject({ portMapFull: 0, tupleMapFull: 0 });
  });

  it('the text report shows the same', async () => {
    // a fresh port: a flow whose 5-tuple still has an entry from the test
    // above (same source port by chance) is no new entry, and ctop rightly
    // does not count it
    const { done } = await startCli(['snapshot', '--duration', '3s', '--netns', lab.srv], /sampling for/);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:8002`, '--flows', '77']);
    const r = await done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${lab.srv}\\s+ipv4\\s+udp\\s+8002\\s+77\\s+0\\s+server\\n`));
    expect(r.stdout).toMatch(/probe tier: netfilter/);
  });

  it('doctor reports the attached programs and the rule that keeps conntrack on', () => {
    const r = runCli(['doctor', '--json', '--netns', lab.srv]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as DoctorReport;
    expect(d.probe.tier).toBe('netfilter');
    expect(d.probe.programs.map((p) => [p.name, p.attached])).toEqual([
      ['ctop_nf_confirm', true],
      ['ctop_kfree_skb', true],
    ]);
    expect(d.conntrackActive).toBe(true);
    const ns = d.namespaces[0]!;
    expect(ns.keepsConntrackOn).toBe(true);
    expect(ns.users.some((u) => u.kind === 'ct-match' && u.table === 'ctop_test')).toBe(true);
  });
});

describe('conntrack inactive', () => {
  it('says so in one line with exit code 5', async () => {
    const lab = createLab({ conntrack: false });
    try {
      const r = runCli(['snapshot', '--duration', '1s', '--netns', lab.srv]);
      expect(r.code).toBe(ExitCode.conntrackInactive);
      expect(expectOneLineError(r.stderr).message).toMatch(/conntrack is not active in the 1 network namespace/);
    } finally {
      lab.destroy();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  });
});
