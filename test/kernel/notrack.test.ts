/**
 * advise, notrack apply/confirm/revert and validate end to end in a lab
 * namespace pair (conntrack on in srv only). Every nft/iptables command runs
 * inside the lab's namespaces: the host ruleset is never touched.
 *
 * srv's extra rules (besides the lab's `ct state new counter`):
 *   udp dport 7002 dnat to 198.18.0.2   (a NATed port)
 *   udp dport 7003 ct state new accept  (a port matched by a state rule)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../src/advise/report.js';
import type { Validation } from '../../src/advise/validate.js';
import { untrackedAccept } from '../../src/advise/rules.js';
import { createLab, ctCount, runLoad, startServer, type Lab } from '../lab/netns.js';
import { expectOneLineError, killStrayClis, runCli, startCli, waitNoCtopPrograms, processAlive } from '../support/cli.js';

afterEach(killStrayClis);

const EXTRA_RULES = `table ip ctop_test_nat {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    udp dport 7002 dnat to 198.18.0.2
  }
}
table inet ctop_test_filter {
  chain input {
    type filter hook input priority filter; policy accept;
    udp dport 7003 ct state new accept
  }
}
`;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Independent cross-check of the census: `conntrack -L` inside the namespace,
 * counted here per proto/original dport and per TCP state (the first dport=
 * on a line is the original direction's).
 */
function conntrackList(lab: Lab, ns: string): { byPort: Record<string, number>; byTcpState: Record<string, number>; remainingByTcpState: Record<string, number[]> } {
  const byPort: Record<string, number> = {};
  const byTcpState: Record<string, number> = {};
  const remainingByTcpState: Record<string, number[]> = {};
  const text = ['ipv4', 'ipv6'].map((f) => lab.exec(ns, ['conntrack', '-L', '-f', f])).join('\n');
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[1] ?? '')) continue;
    const dport = f.find((x) => x.startsWith('dport='));
    if (dport) byPort[`${f[0]}/${dport.slice(6)}`] = (byPort[`${f[0]}/${dport.slice(6)}`] ?? 0) + 1;
    if (f[0] === 'tcp') {
      byTcpState[f[3]!] = (byTcpState[f[3]!] ?? 0) + 1;
      // the third field: seconds left before the entry expires
      (remainingByTcpState[f[3]!] ??= []).push(Number(f[2]));
    }
  }
  return { byPort, byTcpState, remainingByTcpState };
}

describe('advise, notrack and validate in a namespace lab', () => {
  let lab: Lab;
  let stopServer: (() => Promise<unknown>) | undefined;
  let stateDir: string;
  const ruleset = () => lab.exec(lab.srv, ['nft', 'list', 'ruleset']);

  beforeAll(async () => {
    lab = createLab();
    lab.exec(lab.srv, ['nft', '-f', '-'], { input: EXTRA_RULES });
    stopServer = (await startServer(lab, { udp: [7001, 7002, 7003], tcp: [7000] })).stop;
    stateDir = mkdtempSync(join(tmpdir(), 'ctop-notrack-test-'));
  });

  afterAll(async () => {
    await stopServer?.();
    lab?.destroy();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(await waitNoCtopPrograms()).toEqual([]);
  });

  it('advise names the dominant ports first, flags the NATed and the state-matched port, and its rules pass nft -c and iptables-restore --test', async () => {
    const { done } = await startCli(['advise', '--netns', lab.srv, '--duration', '6s', '--json', '--census', '--top', '10'], /measuring/);
    await runLoad(lab, ['--tcp', `${lab.srvAddr4}:7000`, '--flows', '600']);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7001`, '--flows', '300']);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7002`, '--flows', '40']);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7003`, '--flows', '20']);
    const r = await done;
    const censusDoneMs = Date.now();
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as AdviceReport;
    expect(report.schema).toBe('ctop.advice/v1');
    expect(report.namespaces).toHaveLength(1);
    const n = report.namespaces[0]!;
    expect(n.inode).toBe(lab.netnsInode(lab.srv));
    const c = n.notrack.candidates;
    expect(c.map((x) => [`${x.proto}/${x.port}`, x.inserts])).toEqual([
      ['tcp/7000', 600],
      ['udp/7001', 300],
      ['udp/7002', 40],
      ['udp/7003', 20],
    ]);
    expect(c[0]!.insertShare).toBeCloseTo(600 / 960, 4);
    // the census saw every entry (nothing times out within the test)
    expect(n.notrack.census.available).toBe(true);
    expect(c.map((x) => x.occupancy?.entries)).toEqual([600, 300, 40, 20]);
    expect(c.map((x) => x.safe)).toEqual([true, true, false, false]);
    expect(c[2]!.flags.find((f) => f.severity === 'unsafe')).toMatchObject({ reason: expect.stringMatching(/^NAT on this port/), rule: expect.stringMatching(/udp dport 7002 dnat to 198.18.0.2/) });
    expect(c[3]!.flags.find((f) => f.severity === 'unsafe')).toMatchObject({ reason: expect.stringMatching(/conntrack state rule matches this port/), rule: expect.stringMatching(/udp dport 7003 ct state new accept/) });
    expect(n.notrack.allSafe!.ports).toEqual(['tcp/7000', 'udp/7001']);
    // fill after exempting the safe ports, from the census: 960 -> 60 entries
    expect(n.notrack.allSafe!.fillAfter).toMatchObject({ countNow: 960, countAfter: 60, method: 'census' });
    expect(n.keepsOn.keptOnByRules).toBe(true);
    expect(n.keepsOn.rules.some((l) => /dnat/.test(l))).toBe(true);
    expect(n.sizing.current.count).toBe(960);
    expect(n.sizing.theoreticalMax).toBeGreaterThan(0);
    // the census is ctop's own (in-kernel walk where it runs, else a ctnetlink dump), named;
    // its per-port occupancy equals `conntrack -L` counted independently, entry for entry
    // on this kernel the walk runs (census.test.ts proves it); a refusal would show as the fallback here
    expect(report.census!.occupancy, report.census!.fallbackReason).toBe('bpf-hash-walk');
    expect(n.notrack.census.source).toMatch(new RegExp(`^${report.census!.occupancy} `));
    const listed = conntrackList(lab, lab.srv);
    expect(listed.byPort).toEqual({ 'tcp/7000': 600, 'udp/7001': 300, 'udp/7002': 40, 'udp/7003': 20 });
    expect(Object.fromEntries(c.map((x) => [`${x.proto}/${x.port}`, x.occupancy?.entries]))).toEqual(listed.byPort);
    // entries per lingering TCP state, too, and the entries a shorter timeout frees now: the census's
    // histogram gives a range, which must hold what `conntrack -L` says entry by entry
    const words: Record<string, string> = { established: 'ESTABLISHED', time_wait: 'TIME_WAIT', close_wait: 'CLOSE_WAIT', fin_wait: 'FIN_WAIT' };
    const elapsedS = Math.ceil((Date.now() - censusDoneMs) / 1000) + 1;
    for (const t of n.sizing.timeouts) {
      const left = listed.remainingByTcpState[words[t.state]!] ?? [];
      expect(t.entries, t.state).toBe(left.length);
      const cut = t.currentS - t.suggestedS;
      // entries only age: what was surely freed at the census still is; what is freed now was at most `elapsedS` younger then
      expect(t.wouldFree!, t.state).toBeLessThanOrEqual(left.filter((r) => r <= cut).length);
      expect(t.wouldFreeAtMost!, t.state).toBeGreaterThanOrEqual(left.filter((r) => r + elapsedS <= cut).length);
      expect(t.wouldFreeAtMost!).toBeGreaterThanOrEqual(t.wouldFree!);
    }
    expect(report.census!.remainingByState).toBe('histogram');
    // the ctnetlink fallback, forced, counts the same and says why it was used
    const forced = runCli(['advise', '--netns', lab.srv, '--duration', '1s', '--json', '--census', '--occupancy', 'ctnetlink']);
    expect(forced.code, forced.stderr).toBe(0);
    const fr = JSON.parse(forced.stdout) as AdviceReport;
    expect(fr.census).toMatchObject({ occupancy: 'ctnetlink-dump', fallbackReason: 'forced with --occupancy ctnetlink', remainingByState: 'histogram' });
    expect(fr.namespaces[0]!.sizing.timeouts.map((t) => t.entries)).toEqual(n.sizing.timeouts.map((t) => t.entries));
    expect(fr.namespaces[0]!.notrack.census.note).toMatch(/^occupancy from ctnetlink-dump .*, 960 entries$/);

    // every generated rule set, checked for real inside srv
    for (const x of c) {
      lab.exec(lab.srv, ['nft', '-c', '-f', '-'], { input: x.rules.nft });
      for (const bin of ['iptables-nft-restore', 'ip6tables-nft-restore', 'iptables-legacy-restore', 'ip6tables-legacy-restore']) {
        lab.exec(lab.srv, [bin, '--test', '--noflush'], { input: x.rules.iptablesRestore });
      }
    }
    lab.exec(lab.srv, ['nft', '-c', '-f', '-'], { input: n.notrack.allSafe!.nft });
    // the accepts for drop-policy chains, in each syntax, against chains that exist in srv
    const t = { proto: 'udp' as const, port: 7001, portEnd: 7001 };
    const nftAccept = untrackedAccept(t, { source: 'nft', family: 'inet', table: 'ctop_test_filter', chain: 'input' }, 'dport').command;
    lab.exec(lab.srv, ['sh', '-c', nftAccept.replace(/^nft /, 'nft -c ')]);
    for (const [source, family, bin] of [['nft', 'ip', 'iptables-nft-restore'], ['iptables-legacy', 'ip', 'iptables-legacy-restore']] as const) {
      const cmd = untrackedAccept(t, { source, family, table: 'filter', chain: 'INPUT' }, 'dport').command;
      const spec = cmd.replace(/^\S+ -t filter /, '');
      lab.exec(lab.srv, [bin, '--test', '--noflush'], { input: `*filter\n${spec}\nCOMMIT\n` });
    }
    // a broken rule is refused: the check can fail
    expect(() => lab.exec(lab.srv, ['iptables-nft-restore', '--test', '--noflush'], { input: c[0]!.rules.iptablesRestore.replace('--notrack', '--notrak') })).toThrow(/unknown option/);
    // the text form says the same in words
    const text = runCli(['advise', '--netns', lab.srv, '--duration', '1s']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/NOTRACK candidates \(role auto: as the kernel saw each port\); no census: occupancy per port is not available/);
  });

  it('apply is a dry run by default, refuses an unsafe port, and an unconfirmed apply rolls back to the byte', async () => {
    const before = ruleset();
    const dry = runCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/tcp dport 7000 counter notrack comment "ctop tcp\/7000 prerouting dport"/);
    expect(dry.stdout).toMatch(/tcp sport 7000 counter notrack comment "ctop tcp\/7000 output sport"/);
    // --role auto (the default) measures first; with no traffic there is no role to read
    const quiet = runCli(['notrack', 'apply', 'tcp/7000', '--duration', '500ms', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(quiet.code).toBe(1);
    expect(expectOneLineError(quiet.stderr.split('\n').filter((l) => !/measuring/.test(l)).join('\n')).message).toMatch(/cannot infer the role of tcp\/7000: no new entries counted per role|cannot infer the role of tcp\/7000: roles not counted/);
    expect(ruleset()).toBe(before);

    const unsafe = runCli(['notrack', 'apply', 'udp/7002', '--role', 'server', '--netns', lab.srv, '--state-dir', stateDir, '--yes']);
    expect(unsafe.code).toBe(1);
    expect(unsafe.stderr).toMatch(/ctop: notrack apply: unsafe to exempt udp\/7002/);
    expect(ruleset()).toBe(before);

    const t0 = Date.now();
    const r = runCli(['notrack', 'apply', 'tcp/7000', '--role', 'server', '--netns', lab.srv, '--state-dir', stateDir, '--yes', '--confirm-within', '2s']);
    expect(r.code).toBe(1);
    expect(expectOneLineError(r.stderr.split('\n').slice(-3).join('\n')).message).toMatch(/not confirmed within 2s; rolled back/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(ruleset()).toBe(before);
  });

  it('after SIGKILL of the applying ctop, the watchdog still rolls back to the byte', async () => {
    const before = ruleset();
    const { proc, done } = await startCli(['notrack', 'apply', 'tcp/7000', 'udp/7001', '--role', 'server', '--netns', lab.srv, '--state-dir', stateDir, '--yes', '--confirm-within', '3s'], /applied in/);
    expect(ruleset()).toMatch(/table inet ctop_notrack/);
    proc.kill('SIGKILL');
    const r = await done;
    const dog = Number(/watchdog pid (\d+)/.exec(r.stderr)?.[1]);
    expect(processAlive(dog)).toBe(true);
    const deadline = Date.now() + 8000;
    while (ruleset() !== before && Date.now() < deadline) await sleep(200);
    expect(ruleset()).toBe(before);
    while (processAlive(dog) && Date.now() < deadline) await sleep(100);
    expect(processAlive(dog)).toBe(false);
    expect(readdirSync(stateDir).filter((f) => /pending|rollingback|armed/.test(f))).toEqual([]);
    expect(readFileSync(join(stateDir, readdirSync(stateDir).find((f) => f.endsWith('.log'))!), 'utf8')).toMatch(/not confirmed in time: restored/);
  });

  it('validate: inserts on the exempted ports fall to zero, the rules count untracked packets, TCP keeps working; confirm keeps it, revert restores', async () => {
    // Traffic moves the lab's own counters here, so compare without them (nft -s).
    const stateless = () => lab.exec(lab.srv, ['nft', '-s', 'list', 'ruleset']);
    const before = stateless();
    const { done } = await startCli(['validate', '--port', 'tcp/7000', 'udp/7001', '--role', 'server', '--netns', lab.srv, '--duration', '3s', '--json', '--state-dir', stateDir], /measuring/);
    // traffic through both windows, in bounded rounds
    let stop = false;
    const results: { established?: number; sent?: number; errors?: number }[] = [];
    const loop = (async () => {
      for (let i = 0; i < 200 && !stop; i++) {
        results.push(await runLoad(lab, ['--tcp', `${lab.srvAddr4}:7000`, '--flows', '50']));
        results.push(await runLoad(lab, ['--udp', `${lab.srvAddr4}:7001`, '--flows', '50']));
        await sleep(50);
      }
    })();
    const r = await done;
    stop = true;
    await loop;
    expect(r.code, r.stderr).toBe(0);
    const v = JSON.parse(r.stdout) as Validation & { schema: string };
    expect(v.schema).toBe('ctop.validation/v2');
    expect(v.verdict).toBe('PASS');
    // both windows' entries counted by ctop's census, the method named
    const vc = (v as unknown as { census: { occupancy: string } }).census;
    expect(['bpf-hash-walk', 'ctnetlink-dump']).toContain(vc.occupancy);
    const [tcp, udp] = v.targets;
    expect(tcp!.port).toBe('tcp/7000');
    expect(tcp!.before.requestEntriesPerSec).toBeGreaterThan(0);
    expect(tcp!.after.requestEntriesPerSec).toBe(0);
    expect(tcp!.after.replyEntriesPerSec).toBe(0);
    expect(udp!.after.requestEntriesPerSec).toBe(0);
    expect(tcp!.untrackedPackets).toBeGreaterThan(0);
    // both directions of TCP flow through the notrack rules: the handshakes completed
    expect(tcp!.after.packetsPerSec['prerouting dport']).toBeGreaterThan(0);
    expect(tcp!.after.packetsPerSec['output sport']).toBeGreaterThan(0);
    expect(results.every((x) => (x.errors ?? 0) === 0)).toBe(true);
    expect(tcp!.after.entries).not.toBeNull();
    expect(r.stderr).toMatch(/the change is pending/);

    // confirm, then fresh traffic adds no entry on the exempted ports (the
    // table is emptied first: older UDP entries would time out mid-count),
    // while a tracked control port still gets one entry per flow
    const c = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(c.code, c.stderr).toBe(0);
    lab.exec(lab.srv, ['conntrack', '-F']);
    const load = await runLoad(lab, ['--tcp', `${lab.srvAddr4}:7000`, '--flows', '100']);
    expect(load.established).toBe(100);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7001`, '--flows', '100']);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:7003`, '--flows', '10']);
    // ctop's table is inet: IPv6 is exempted too
    await runLoad(lab, ['--udp', `[${lab.srvAddr6}]:7001`, '--flows', '50']);
    expect((await runLoad(lab, ['--tcp', `[${lab.srvAddr6}]:7000`, '--flows', '50'])).established).toBe(50);
    await runLoad(lab, ['--udp', `[${lab.srvAddr6}]:7003`, '--flows', '7']);
    expect(ctCount(lab.srv, ['-f', 'ipv4', '-p', 'tcp', '--dport', '7000'])).toBe(0);
    expect(ctCount(lab.srv, ['-f', 'ipv4', '-p', 'udp', '--dport', '7001'])).toBe(0);
    expect(ctCount(lab.srv, ['-f', 'ipv4', '-p', 'udp', '--dport', '7003'])).toBe(10);
    expect(ctCount(lab.srv, ['-f', 'ipv6', '-p', 'tcp', '--dport', '7000'])).toBe(0);
    expect(ctCount(lab.srv, ['-f', 'ipv6', '-p', 'udp', '--dport', '7001'])).toBe(0);
    expect(ctCount(lab.srv, ['-f', 'ipv6', '-p', 'udp', '--dport', '7003'])).toBe(7);
    const counters = lab.exec(lab.srv, ['nft', 'list', 'table', 'inet', 'ctop_notrack']);
    expect(counters).toMatch(/udp dport 7001 counter packets [1-9]\d* bytes \d+ notrack/);

    // a second confirm has nothing to confirm
    const again = runCli(['notrack', 'confirm', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(again.code).toBe(1);
    expect(expectOneLineError(again.stderr).message).toMatch(/nothing is waiting for confirmation/);

    const rv = runCli(['notrack', 'revert', '--netns', lab.srv, '--state-dir', stateDir]);
    expect(rv.code, rv.stderr).toBe(0);
    expect(stateless()).toBe(before);
    expect(ruleset()).not.toMatch(/ctop_notrack/);
  });
});

describe('bad input to advise, notrack and validate: one line, a hint, exit code 2, nothing changed', () => {
  const cases: [string[], RegExp][] = [
    [['notrack', 'apply'], /missing required argument 'port'/],
    [['notrack', 'apply', '0'], /'0' is not a port/],
    [['notrack', 'apply', 'sctp/5000'], /'sctp\/5000' is not a port: protocol sctp has no ports/],
    [['notrack', 'apply', 'udp/60100-60000'], /'udp\/60100-60000' is a reversed range \(60100 > 60000\)/],
    [['notrack', 'apply', 'udp/60000-'], /'udp\/60000-' is an empty range/],
    [['notrack', 'apply', 'udp/60000-60100', 'udp/60050'], /udp\/60050 overlaps udp\/60000-60100/],
    [['notrack', 'apply', 'udp/1-65536'], /'udp\/1-65536' is not a port: 65536 is outside 1-65535/],
    [['notrack', 'apply', 'udp/60000-60100', '--proto', 'tcp'], /'udp\/60000-60100' names udp but --proto is tcp/],
    [['notrack', 'revert', 'udp/60100-60000'], /reversed range/],
    [['validate', '--port', 'udp/60000-60100', 'udp/60000-60001'], /validate: udp\/60000-60001 overlaps udp\/60000-60100/],
    [['validate', '--port', 'tcp/0-10'], /'tcp\/0-10' is not a port: 0 is outside 1-65535/],
    [['notrack', 'apply', '5000', '--role', 'both'], /--role <role>' argument 'both' is invalid/],
    [['notrack', 'apply', '5000', '--confirm-within', '0s'], /--confirm-within: '0s' is out of range/],
    [['notrack', 'confirm', '--netns', 'ctop-no-such-ns'], /--netns: no network namespace at 'ctop-no-such-ns'/],
    [['validate'], /required option '--port <port...>' not specified/],
    [['validate', '--port', '70000'], /'70000' is not a port/],
    [['advise', '--top', '0'], /--top: 0 is out of range/],
    [['advise', '--duration', 'soon'], /--duration: 'soon' is not a duration/],
  ];
  for (const [args, message] of cases) {
    it(args.join(' '), () => {
      const r = runCli(args);
      expect(r.code).toBe(2);
      expect(expectOneLineError(r.stderr).message).toMatch(message);
    });
  }
});
