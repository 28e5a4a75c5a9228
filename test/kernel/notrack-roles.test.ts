/**
 * The NOTRACK loop on each topology, judged by the kernel: for a UDP service
 * that answers (udp/5353, echo) and a TCP service (tcp/7000), in the
 * namespace whose table fills,
 *   1. `ctop advise` names the ports with the role the kernel shows;
 *   2. `ctop validate` (with that role) PASSes, and while its change is
 *      pending, the same bounded traffic creates >= 95 % fewer entries in
 *      either direction than before, counted by `conntrack -L` (original
 *      destination OR source port = the service port), while every reply
 *      still arrives and every TCP connection is established;
 *   3. a one-way role that misses a direction FAILs, exits 1 and leaves the
 *      ruleset as it was (rolled back).
 * Topologies: a local server with remote clients; the client side; both ends
 * on one host (loopback); a router namespace forwarding (IPv4 and IPv6); two
 * pods behind a bridge in a node namespace (br_netfilter, the Kubernetes
 * node layout). Every command runs inside the lab's namespaces.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../src/advise/report.js';
import type { Validation } from '../../src/advise/validate.js';
import { createLab, createRoutedLab, ctCount, runLoad, startServer, type Lab } from '../lab/netns.js';
import { createBridgeLab } from '../lab/topologies.js';
import { killStrayClis, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';

afterEach(killStrayClis);

const UDP = 5353;
const TCP = 7000;
const FLOWS = 60;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Topology {
  name: string;
  make(): Lab & { mid?: string };
  /** where conntrack runs and ctop acts */
  ctNs(lab: Lab & { mid?: string }): string;
  /** where the clients run */
  fromNs(lab: Lab & { mid?: string }): string;
  role: string;
  /** a one-way role that misses a direction of this traffic */
  wrongRole: string;
  ipv6?: boolean;
}

const TOPOLOGIES: Topology[] = [
  { name: 'local server, remote clients', make: () => createLab(), ctNs: (l) => l.srv, fromNs: (l) => l.cli, role: 'server', wrongRole: 'client' },
  {
    name: 'client side',
    make: () => {
      const lab = createLab({ conntrack: false });
      lab.exec(lab.cli, ['nft', '-f', '-'], { input: 'table inet ctop_test {\n  chain pre { type filter hook prerouting priority 0; ct state new counter; }\n  chain out { type filter hook output priority 0; ct state new counter; }\n}\n' });
      return lab;
    },
    ctNs: (l) => l.cli,
    fromNs: (l) => l.cli,
    role: 'client',
    wrongRole: 'server',
  },
  { name: 'both ends on one host (loopback)', make: () => createLab(), ctNs: (l) => l.srv, fromNs: (l) => l.srv, role: 'local', wrongRole: 'server' },
  { name: 'forwarded through a router namespace, IPv4 and IPv6', make: () => { const l = createRoutedLab(); return Object.assign(l, { mid: l.rtr }); }, ctNs: (l) => l.mid!, fromNs: (l) => l.cli, role: 'forward', wrongRole: 'server', ipv6: true },
  { name: 'two pods behind a bridge in a node namespace', make: () => createBridgeLab(), ctNs: (l) => l.mid!, fromNs: (l) => l.cli, role: 'forward', wrongRole: 'server' },
];

/** Figures for the report, printed once at the end. */
const results: string[] = [];

for (const topo of TOPOLOGIES) {
  describe(`NOTRACK on ${topo.name}`, () => {
    let lab: Lab & { mid?: string };
    let stopServer: (() => Promise<unknown>) | undefined;
    let stateDir: string;
    let ns: string;

    beforeAll(async () => {
      lab = topo.make();
      ns = topo.ctNs(lab);
      stopServer = (await startServer(lab, { udp: [UDP], tcp: [TCP] }, { echo: true })).stop;
      stateDir = mkdtempSync(join(tmpdir(), 'ctop-notrack-roles-'));
    });

    afterAll(async () => {
      await stopServer?.();
      lab?.destroy();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
      expect(await waitNoCtopPrograms()).toEqual([]);
    });

    /** One bounded round of the traffic: UDP requests that are answered, TCP connections. */
    async function round(n: number): Promise<{ replies: number; established: number }> {
      const from = topo.fromNs(lab);
      const targets4 = [lab.srvAddr4];
      const u = await runLoad(lab, ['--udp', `${targets4[0]}:${UDP}`, '--flows', String(n), '--wait-reply-ms', '1000'], { ns: from });
      const t = await runLoad(lab, ['--tcp', `${lab.srvAddr4}:${TCP}`, '--flows', String(n)], { ns: from });
      let replies = u.replies as number;
      let established = t.established ?? 0;
      if (topo.ipv6) {
        const u6 = await runLoad(lab, ['--udp', `[${lab.srvAddr6}]:${UDP}`, '--flows', String(n), '--wait-reply-ms', '1000'], { ns: from });
        const t6 = await runLoad(lab, ['--tcp', `[${lab.srvAddr6}]:${TCP}`, '--flows', String(n)], { ns: from });
        replies += u6.replies as number;
        established += t6.established ?? 0;
      }
      return { replies, established };
    }

    /** Entries of the services in either direction, as the kernel lists them. */
    function serviceEntries(): number {
      let n = 0;
      for (const [p, port] of [['udp', UDP], ['tcp', TCP]] as const) {
        for (const fam of topo.ipv6 ? ['ipv4', 'ipv6'] : ['ipv4']) {
          n += ctCount(ns, ['-f', fam, '-p', p, '--orig-port-dst', String(port)]);
          n += ctCount(ns, ['-f', fam, '-p', p, '--orig-port-src', String(port)]);
        }
      }
      return n;
    }

    /** Traffic in bounded rounds until stop() (at most 200 rounds). */
    function trafficLoop(): { stop(): Promise<{ replies: number; established: number; sent: number }> } {
      let stopped = false;
      const sum = { replies: 0, established: 0, sent: 0 };
      const loop = (async () => {
        for (let i = 0; i < 200 && !stopped; i++) {
          const r = await round(20);
          sum.replies += r.replies;
          sum.established += r.established;
          sum.sent += topo.ipv6 ? 40 : 20;
          await sleep(30);
        }
      })();
      return {
        async stop() {
          stopped = true;
          await loop;
          return sum;
        },
      };
    }

    it(`advise and validate (--role auto) both read ${topo.role}; validate PASSes and the kernel's entries of both directions fall >= 95 % while every reply arrives`, async () => {
      // 1. advise, on live traffic
      const adv = await startCli(['advise', '--netns', ns, '--duration', '2s', '--json', '--top', '5'], /measuring/);
      const load = trafficLoop();
      const a = await adv.done;
      await load.stop();
      expect(a.code, a.stderr).toBe(0);
      const report = JSON.parse(a.stdout) as AdviceReport;
      const cands = report.namespaces.find((n) => n.inode === lab.netnsInode(ns))!.notrack.candidates;
      const byPort = new Map(cands.map((c) => [`${c.proto}/${c.port}`, c]));
      for (const key of [`udp/${UDP}`, `tcp/${TCP}`]) {
        const c = byPort.get(key);
        expect(c, `${key} in ${JSON.stringify(cands.map((x) => `${x.proto}/${x.port}`))}`).toBeDefined();
        expect(c!.role, c!.roleEvidence.evidence).toBe(topo.role);
        expect(c!.roleEvidence.inferred).toBe(true);
      }

      // 2. the kernel's count before any change
      lab.exec(ns, ['conntrack', '-F']);
      const base = await round(FLOWS);
      const perDir = topo.ipv6 ? 2 : 1;
      expect(base).toEqual({ replies: FLOWS * perDir, established: FLOWS * perDir });
      const entriesBefore = serviceEntries();
      // one entry per flow (udp and tcp, per family)
      expect(entriesBefore).toBe(2 * FLOWS * perDir);

      // 3. validate with the measured role (auto), traffic flowing through both windows
      const rulesetBefore = lab.exec(ns, ['nft', '-s', 'list', 'ruleset']);
      const v = await startCli(['validate', '--port', `udp/${UDP}`, `tcp/${TCP}`, '--netns', ns, '--duration', '2s', '--no-census', '--json', '--state-dir', stateDir], /measuring/);
      const load2 = trafficLoop();
      const r = await v.done;
      const flowed = await load2.stop();
      expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
      const val = JSON.parse(r.stdout) as Validation;
      expect(val.verdict).toBe('PASS');
      expect(val.targets.map((t) => t.role)).toEqual([topo.role, topo.role]);
      expect(flowed.replies).toBe(flowed.sent);
      expect(r.stderr).toMatch(/the change is pending/);

      // 4. with the change in place, the same traffic: the kernel's entries in either direction
      lab.exec(ns, ['conntrack', '-F']);
      const after = await round(FLOWS);
      expect(after).toEqual({ replies: FLOWS * perDir, established: FLOWS * perDir });
      const entriesAfter = serviceEntries();
      const cut = 1 - entriesAfter / entriesBefore;
      results.push(`${topo.name}: role ${topo.role}: entries ${entriesBefore} -> ${entriesAfter} (cut ${(cut * 100).toFixed(1)} %); ctop's namespace cut ${val.namespace.observedCut}`);
      expect(cut).toBeGreaterThanOrEqual(0.95);
      // the rules count what they exempted
      expect(lab.exec(ns, ['nft', 'list', 'table', 'inet', 'ctop_notrack'])).toMatch(new RegExp(`udp dport ${UDP} counter packets [1-9]`));

      const rv = runCli(['notrack', 'revert', '--netns', ns, '--state-dir', stateDir]);
      expect(rv.code, rv.stderr).toBe(0);
      expect(lab.exec(ns, ['nft', '-s', 'list', 'ruleset'])).toBe(rulesetBefore);
    });

    it(`a one-way role (--role ${topo.wrongRole}) FAILs, names the direction still tracked, exits 1 and rolls back`, async () => {
      const rulesetBefore = lab.exec(ns, ['nft', '-s', 'list', 'ruleset']);
      const v = await startCli(['validate', '--port', `udp/${UDP}`, '--role', topo.wrongRole, '--netns', ns, '--duration', '2s', '--no-census', '--json', '--state-dir', stateDir], /measuring/);
      const load = trafficLoop();
      const r = await v.done;
      await load.stop();
      expect(r.code, r.stderr).toBe(1);
      const val = JSON.parse(r.stdout) as Validation;
      expect(val.verdict).toBe('FAIL');
      expect(val.targets[0]!.problems.join('\n')).toMatch(new RegExp(`still create entries.*--role ${topo.role}`));
      expect(r.stderr).toMatch(/ctop: validate: FAIL: .*rolled back/);
      expect(lab.exec(ns, ['nft', '-s', 'list', 'ruleset'])).toBe(rulesetBefore);
    });
  });
}

afterAll(() => {
  process.stdout.write(`\nNOTRACK lab results (kernel counts):\n${results.map((l) => `  ${l}`).join('\n')}\n`);
});
