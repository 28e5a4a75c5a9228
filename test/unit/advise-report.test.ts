/**
 * planAdvice, the pure plan behind `ctop advise`, from a fixture window and
 * namespace readings: which namespaces it advises on, the candidates with
 * their roles and ranges, and the text form naming role, evidence and the
 * commands to run.
 */
import { describe, expect, it } from 'vitest';
import { planAdvice, type AdvicePlanInput, type NamespaceInput } from '../../src/advise/report.js';
import { formatAdvice } from '../../src/format/adviceText.js';
import type { RoleCounts } from '../../src/model/roles.js';
import type { PortRow, SnapshotV1 } from '../../src/model/snapshot.js';
import { fixtureWindow, HOST_NS, LAB_NS } from '../support/tuiFixtures.js';

const R = (r: Partial<RoleCounts>): RoleCounts => ({ server: 0, client: 0, local: 0, forward: 0, ...r });

function window(): SnapshotV1 {
  const s = fixtureWindow(0);
  const ports: (PortRow & { roles: RoleCounts })[] = [
    { netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: 11211, inserts: 600, drops: 0, roles: R({ local: 600 }) },
    { netns: LAB_NS, family: 'ipv6', proto: 'udp', protoNum: 17, port: 5353, inserts: 300, drops: 0, roles: R({ forward: 290, server: 10 }) },
  ];
  for (let p = 60000; p <= 60100; p++) ports.push({ netns: LAB_NS, family: 'ipv4', proto: 'udp', protoNum: 17, port: p, inserts: 5, drops: 0, roles: R({ server: 5 }) });
  ports.push({ netns: HOST_NS, family: 'ipv4', proto: 'tcp', protoNum: 6, port: 443, inserts: 10, drops: 0, roles: R({ client: 10 }) });
  const inserts = ports.reduce((a, p) => a + p.inserts, 0);
  return {
    ...s,
    ports,
    totals: { ...s.totals, inserts },
    namespaces: [
      { ...s.namespaces.find((n) => n.inode === LAB_NS)!, inserts: inserts - 10 },
      { inode: 4026532777, name: 'idle', count: 0, fillRatio: 0, inserts: 0, drops: 0, earlyDrops: 0, insertFailed: 0 },
      { ...s.namespaces.find((n) => n.inode === HOST_NS)!, inserts: 10 },
    ],
  };
}

const input = (inode: number): NamespaceInput => ({ inode, ruleset: { users: [], chains: [], errors: [] }, helperAutoAssign: null, timeoutsS: { established: 432000 }, errors: [] });

function plan(over: Partial<AdvicePlanInput> = {}): ReturnType<typeof planAdvice> {
  const s = window();
  return planAdvice({
    snapshot: s,
    host: { memBytes: 8 << 30, wordBits: 64, entryBytes: 320, helpers: [], modules: [] },
    kernelRelease: '6.18.0',
    namespaces: new Map([LAB_NS, HOST_NS, 4026532777].map((i) => [i, input(i)])),
    oneNamespace: false,
    role: 'auto',
    top: 5,
    errors: [],
    ...over,
  });
}

describe('planAdvice', () => {
  it('advises on the busy namespaces only, each candidate with its measured role; a range for the spread service', () => {
    const r = plan();
    expect(r.schema).toBe('ctop.advice/v1');
    expect(r.namespaces.map((n) => n.inode)).toEqual([LAB_NS, HOST_NS]);
    const lab = r.namespaces[0]!.notrack.candidates;
    expect(lab.map((c) => [c.proto, c.port, c.portEnd, c.role, c.families])).toEqual([
      ['udp', 11211, 11211, 'local', ['ipv4']],
      ['udp', 60000, 60100, 'server', ['ipv4']],
      ['udp', 5353, 5353, 'server+forward', ['ipv6']],
    ]);
    expect(lab[2]!.roleEvidence.evidence).toBe('97 % of new entries forwarded, 3.3 % to a local server');
    expect(r.namespaces[1]!.notrack.candidates[0]).toMatchObject({ proto: 'tcp', port: 443, role: 'client' });
    // --netns: the one namespace even when idle
    expect(plan({ oneNamespace: true, namespaces: new Map([[4026532777, input(4026532777)]]) }).namespaces.map((n) => n.inode)).toEqual([4026532777]);
  });

  it('the text names each candidate\'s role and evidence, the range, and the commands to apply and validate', () => {
    const t = formatAdvice(plan());
    expect(t).toMatch(/NOTRACK candidates \(role auto: as the kernel saw each port\)/);
    expect(t).toMatch(/udp\/60000-60100 +server/);
    expect(t).toMatch(/#3 udp\/5353: no blocker found\n {4}role server\+forward: 97 % of new entries forwarded, 3\.3 % to a local server/);
    expect(t).toContain('ctop notrack apply udp/11211 udp/60000-60100 udp/5353 --role auto');
    expect(t).toContain('ctop validate --port udp/11211 udp/60000-60100 udp/5353 --role auto');
  });
});
