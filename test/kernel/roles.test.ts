/**
 * The role of each new entry (src/model/roles.ts), counted by ctop's kernel
 * programs, against known traffic in three namespaces this test creates:
 * cli sends to srv through rtr, which forwards; srv also talks to itself.
 * Every flow is new in each namespace it passes, with a different role in
 * each. Exact per-port counts, held to the lab's own nft `ct state new`
 * counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelSource } from '../../src/source/kernelSource.js';
import type { Sample } from '../../src/model/sample.js';
import { cleanupStaleLabs, createRoutedLab, runLoad, startServer, type RoutedLab } from '../lab/netns.js';
import { waitNoCtopPrograms } from '../support/cli.js';

const UDP4 = 5100;
const UDP6 = 5101;
const TCP4 = 5102;
const LOOP4 = 5103;
const LOOP6 = 5104;
const FLOWS = { udp4: 25, udp6: 15, tcp4: 10, loop4: 12, loop6: 8 };

const none = { server: 0, client: 0, local: 0, forward: 0 };

function roleOf(s: Sample, netns: number, family: 'ipv4' | 'ipv6', proto: number, port: number) {
  return s.ports.find((p) => p.netns === netns && p.family === family && p.proto === proto && p.port === port)?.roles;
}

describe('roles of new entries: server, client, local, forward (netfilter tier)', () => {
  let lab: RoutedLab;
  let source: KernelSource;
  let stopServer: (() => Promise<unknown>) | undefined;

  beforeAll(async () => {
    cleanupStaleLabs();
    lab = createRoutedLab();
    source = new KernelSource({ tier: 'netfilter', maxPorts: 8192, maxTuples: 16384, maxDropTuples: 4096, rescanMs: 1000 });
    await source.start();
    stopServer = (await startServer(lab, { udp: [UDP4, UDP6, LOOP4, LOOP6], tcp: [TCP4] })).stop;
  });

  afterAll(async () => {
    await stopServer?.();
    source?.close();
    lab?.destroy();
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('gives each flow its role in each namespace it passes, exactly', async () => {
    const [cli, rtr, srv] = [lab.cli, lab.rtr, lab.srv].map((ns) => lab.netnsInode(ns)) as [number, number, number];
    const nft0 = { cli: lab.newCounters(lab.cli), rtr: lab.newCounters(lab.rtr), srv: lab.newCounters(lab.srv) };
    const before = source.sample();
    expect(before.ports.filter((p) => [cli, rtr, srv].includes(p.netns))).toEqual([]);

    await runLoad(lab, ['--udp', `${lab.srvAddr4}:${UDP4}`, '--flows', String(FLOWS.udp4)]);
    await runLoad(lab, ['--udp', `[${lab.srvAddr6}]:${UDP6}`, '--flows', String(FLOWS.udp6)]);
    await runLoad(lab, ['--tcp', `${lab.srvAddr4}:${TCP4}`, '--flows', String(FLOWS.tcp4)]);
    // srv to its own addresses: out of and back in through loopback
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:${LOOP4}`, '--flows', String(FLOWS.loop4)], { ns: lab.srv });
    await runLoad(lab, ['--udp', `[${lab.srvAddr6}]:${LOOP6}`, '--flows', String(FLOWS.loop6)], { ns: lab.srv });

    const after = source.sample();
    // sent by cli, forwarded by rtr, received by srv
    for (const [ns, role] of [[cli, 'client'], [rtr, 'forward'], [srv, 'server']] as const) {
      expect(roleOf(after, ns, 'ipv4', 17, UDP4), `udp4 in ${role}`).toEqual({ ...none, [role]: FLOWS.udp4 });
      expect(roleOf(after, ns, 'ipv6', 17, UDP6), `udp6 in ${role}`).toEqual({ ...none, [role]: FLOWS.udp6 });
      expect(roleOf(after, ns, 'ipv4', 6, TCP4), `tcp4 in ${role}`).toEqual({ ...none, [role]: FLOWS.tcp4 });
    }
    expect(roleOf(after, srv, 'ipv4', 17, LOOP4)).toEqual({ ...none, local: FLOWS.loop4 });
    expect(roleOf(after, srv, 'ipv6', 17, LOOP6)).toEqual({ ...none, local: FLOWS.loop6 });
    // the loopback flows never left srv
    for (const ns of [cli, rtr]) {
      expect(roleOf(after, ns, 'ipv4', 17, LOOP4)).toBeUndefined();
      expect(roleOf(after, ns, 'ipv6', 17, LOOP6)).toBeUndefined();
    }
    // every port's roles add up to its inserts
    for (const p of after.ports.filter((x) => [cli, rtr, srv].includes(x.netns))) {
      expect(p.roles.server + p.roles.client + p.roles.local + p.roles.forward).toBe(p.inserts);
    }

    // The kernel's view: the lab's `ct state new` counters. A sent flow is
    // new on output, a received or forwarded one on prerouting, a loopback
    // one on both (the same skb passes output, then prerouting on lo).
    const sum = (ns: number) => {
      const t = { ...none };
      for (const p of after.ports.filter((x) => x.netns === ns)) {
        for (const r of Object.keys(t) as (keyof typeof t)[]) t[r] += p.roles[r];
      }
      return t;
    };
    const nftDelta = (ns: string, was: { pre: number; out: number }) => {
      const now = lab.newCounters(ns);
      return { pre: now.pre - was.pre, out: now.out - was.out };
    };
    const through = FLOWS.udp4 + FLOWS.udp6 + FLOWS.tcp4;
    const local = FLOWS.loop4 + FLOWS.loop6;
    for (const [name, ns, was] of [['cli', cli, nft0.cli], ['rtr', rtr, nft0.rtr], ['srv', srv, nft0.srv]] as const) {
      const r = sum(ns);
      const k = nftDelta(lab[name], was);
      expect({ ns: name, out: r.client + r.local, pre: r.server + r.forward + r.local }).toEqual({ ns: name, ...k });
    }
    expect(sum(cli)).toEqual({ ...none, client: through });
    expect(sum(rtr)).toEqual({ ...none, forward: through });
    expect(sum(srv)).toEqual({ ...none, server: through, local });
  });
});
