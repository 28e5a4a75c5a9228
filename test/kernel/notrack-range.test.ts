/**
 * The field report's mix on one host, judged by the kernel: a cache on
 * udp/11211 whose clients run on the same host (loopback: role local), a UDP
 * service spread over 100 ports 60000-60099 with remote clients (server), and
 * a TCP service on tcp/7000 (server). All UDP requests are answered (echo).
 *   - advise offers the spread service as ONE range candidate, with the role
 *     of each candidate, and every candidate's rules pass `nft -c`,
 *     iptables-nft-restore --test and iptables-legacy-restore --test (and
 *     their ip6tables twins) inside the namespace;
 *   - notrack apply of the range (role measured) loads interval rules; with
 *     them confirmed the range's traffic creates no entry (conntrack -L);
 *     revert of just the range removes just its rules;
 *   - validate of all three together PASSes and the kernel's entries of the
 *     three services fall >= 95 % while every reply still arrives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../src/advise/report.js';
import type { Validation } from '../../src/advise/validate.js';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { killStrayClis, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';

afterEach(killStrayClis);

const LO = 60000;
const HI = 60099;
const RANGE_PORTS = Array.from({ length: HI - LO + 1 }, (_, i) => LO + i);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('the field report mix: a local cache, a UDP service over 100 ports, a TCP service', () => {
  let lab: Lab;
  let stopServer: (() => Promise<unknown>) | undefined;
  let stateDir: string;

  beforeAll(async () => {
    lab = createLab();
    stopServer = (await startServer(lab, { udp: [11211, ...RANGE_PORTS], tcp: [7000] }, { echo: true })).stop;
    stateDir = mkdtempSync(join(tmpdir(), 'ctop-notrack-range-'));
  });

  afterAll(async () => {
    await stopServer?.();
    lab?.destroy();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  /** One bounded round: n cache requests from srv itself, one datagram to each port of the range from cli, n TCP connections. */
  async function round(n: number): Promise<{ replies: number; sent: number; established: number }> {
    const cache = await runLoad(lab, ['--udp', `${lab.srvAddr4}:11211`, '--flows', String(n), '--wait-reply-ms', '1000'], { ns: lab.srv });
    const range = await runLoad(lab, ['--udp', `${lab.srvAddr4}:${LO}`, '--port-span', String(RANGE_PORTS.length), '--flows', String(RANGE_PORTS.length), '--wait-reply-ms', '1000']);
    const tcp = await runLoad(lab, ['--tcp', `${lab.srvAddr4}:7000`, '--flows', String(n)]);
    return { replies: (cache.replies as number) + (range.replies as number), sent: n + RANGE_PORTS.length, established: tcp.established ?? 0 };
  }

  function trafficLoop(n: number): { stop(): Promise<{ replies: number; sent: number }> } {
    let stopped = false;
    const sum = { replies: 0, sent: 0 };
    const loop = (async () => {
      for (let i = 0; i < 200 && !stopped; i++) {
        const r = await round(n);
        sum.replies += r.replies;
        sum.sent += r.sent;
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

  /** Entries per service in srv, from `conntrack -L`: original destination or source port in the service's ports. */
  function entries(): { cache: number; range: number; tcp: number } {
    const out = { cache: 0, range: 0, tcp: 0 };
    const text = lab.exec(lab.srv, ['conntrack', '-L']);
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      const sport = Number(f.find((x) => x.startsWith('sport='))?.slice(6));
      const dport = Number(f.find((x) => x.startsWith('dport='))?.slice(6));
      const any = (p: (x: number) => boolean) => p(sport) || p(dport);
      if (f[0] === 'udp' && any((x) => x === 11211)) out.cache++;
      else if (f[0] === 'udp' && any((x) => x >= LO && x <= HI)) out.range++;
      else if (f[0] === 'tcp' && any((x) => x === 7000)) out.tcp++;
    }
    return out;
  }

  it('advise offers one range candidate for the spread service, each candidate with its role, and all rules pass the three dialects', async () => {
    const adv = await startCli(['advise', '--netns', lab.srv, '--duration', '2s', '--json', '--top', '5'], /measuring/);
    const load = trafficLoop(20);
    const a = await adv.done;
    await load.stop();
    expect(a.code, a.stderr).toBe(0);
    const n = (JSON.parse(a.stdout) as AdviceReport).namespaces[0]!;
    const c = n.notrack.candidates;
    // the range first; the cache and the TCP service have as many new entries each (their order is a tie)
    expect(c[0]).toMatchObject({ proto: 'udp', port: LO, portEnd: HI, role: 'server' });
    expect(c.slice(1).map((x) => [x.proto, x.port, x.portEnd, x.role]).sort()).toEqual([
      ['tcp', 7000, 7000, 'server'],
      ['udp', 11211, 11211, 'local'],
    ]);
    const range = c[0]!;
    // ranked by the combined share: 100 of every 140 new entries, 0.7 % a port
    expect(range.insertShare).toBeGreaterThan(0.6);
    expect(range.portsSeen).toBe(RANGE_PORTS.length);
    expect(range.roleEvidence.evidence).toMatch(/^100 % of new entries to a local server$/);
    expect(c.find((x) => x.port === 11211)!.roleEvidence.evidence).toMatch(/^100 % of new entries between two local ends$/);
    expect(range.rules.nft).toMatch(/udp dport 60000-60099 counter notrack/);
    expect(range.rules.iptablesRestore).toMatch(/--dport 60000:60099 -j CT --notrack/);
    for (const x of c) {
      lab.exec(lab.srv, ['nft', '-c', '-f', '-'], { input: x.rules.nft });
      for (const bin of ['iptables-nft-restore', 'ip6tables-nft-restore', 'iptables-legacy-restore', 'ip6tables-legacy-restore']) {
        lab.exec(lab.srv, [bin, '--test', '--noflush'], { input: x.rules.iptablesRestore });
      }
    }
    lab.exec(lab.srv, ['nft', '-c', '-f', '-'], { input: n.notrack.allSafe!.nft });
    // the check can fail: a reversed interval is refused by nft
    expect(() => lab.exec(lab.srv, ['nft', '-c', '-f', '-'], { input: range.rules.nft.replace('60000-60099', '60099-60000') })).toThrow();
  });

  it('apply of the range (role measured) exempts all 100 ports; revert of the range removes only its rules', async () => {
    const before = lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset']);
    const load = trafficLoop(10);
    const ap = await startCli(['notrack', 'apply', `udp/${LO}-${HI}`, '--duration', '2s', '--yes', '--confirm-within', '20s', '--netns', lab.srv, '--state-dir', stateDir], /applied in/, 40_000);
    await load.stop();
    const c = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(c.code, c.stderr).toBe(0);
    const r = await ap.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/udp\/60000-60099: server \(100 % of new entries to a local server\)/);
    const table = lab.exec(lab.srv, ['nft', 'list', 'table', 'inet', 'ctop_notrack']);
    expect(table).toMatch(/udp dport 60000-60099 counter packets \d+ bytes \d+ notrack/);
    expect(table).toMatch(/udp sport 60000-60099 counter packets \d+ bytes \d+ notrack/);
    lab.exec(lab.srv, ['conntrack', '-F']);
    const res = await round(30);
    expect(res.replies).toBe(res.sent);
    const e = entries();
    expect(e.range).toBe(0);
    // the others are still tracked: the exemption is the range's alone
    expect(e.cache).toBe(30);
    expect(e.tcp).toBe(30);
    const rv = runCli(['notrack', 'revert', `udp/${LO}-${HI}`, '--netns', lab.srv, '--state-dir', stateDir]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(lab.exec(lab.srv, ['nft', 'list', 'table', 'inet', 'ctop_notrack'])).not.toMatch(/60000/);
    const again = runCli(['notrack', 'revert', `udp/${LO}-${HI}`, '--netns', lab.srv, '--state-dir', stateDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ctop: notrack revert: udp\/60000-60099 is not exempted in ctop's table/);
    const all = runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(all.code, all.stderr).toBe(0);
    expect(lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset'])).toBe(before);
  });

  it('validate of the three candidates together PASSes; the kernel counts >= 95 % fewer entries of all three while every reply arrives', async () => {
    lab.exec(lab.srv, ['conntrack', '-F']);
    const base = await round(30);
    expect(base.replies).toBe(base.sent);
    const e0 = entries();
    expect(e0).toEqual({ cache: 30, range: RANGE_PORTS.length, tcp: 30 });
    const before = lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset']);
    const v = await startCli(['validate', '--port', `udp/${LO}-${HI}`, 'udp/11211', 'tcp/7000', '--netns', lab.srv, '--duration', '2s', '--no-census', '--json', '--state-dir', stateDir], /measuring/);
    const load = trafficLoop(10);
    const r = await v.done;
    const flowed = await load.stop();
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const val = JSON.parse(r.stdout) as Validation;
    expect(val.verdict).toBe('PASS');
    expect(val.targets.map((t) => [t.port, t.role])).toEqual([
      [`udp/${LO}-${HI}`, 'server'],
      ['udp/11211', 'local'],
      ['tcp/7000', 'server'],
    ]);
    expect(flowed.replies).toBe(flowed.sent);
    lab.exec(lab.srv, ['conntrack', '-F']);
    const after = await round(30);
    expect(after.replies).toBe(after.sent);
    expect(after.established).toBe(30);
    const e1 = entries();
    const cut = 1 - (e1.cache + e1.range + e1.tcp) / (e0.cache + e0.range + e0.tcp);
    process.stdout.write(`\nfield report mix: entries ${JSON.stringify(e0)} -> ${JSON.stringify(e1)} (cut ${(cut * 100).toFixed(1)} %)\n`);
    expect(cut).toBeGreaterThanOrEqual(0.95);
    const rv = runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset'])).toBe(before);
  });
});
