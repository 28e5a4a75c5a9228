/**
 * `ctop demo` end to end, as a newcomer runs it: the throwaway namespace is
 * filled until conntrack drops packets, the report names the flooded cache
 * port and counts the drops, and afterwards the machine is exactly as before
 * (namespaces, BPF programs and links, sysctls, the host's ruleset and
 * interfaces), also when the run is cut short by SIGINT, SIGTERM or SIGHUP.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DemoReport } from '../../src/commands/demo.js';
import type { AdviceReport } from '../../src/advise/report.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { expectOneLineError, killStrayClis, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { Tmux } from '../support/tmux.js';

afterEach(killStrayClis);

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });

/** Everything the demo could leave behind, read from the kernel. */
function machineState(): Record<string, unknown> {
  const sysctls: Record<string, string> = {};
  const dir = '/proc/sys/net/netfilter';
  for (const f of readdirSync(dir)) {
    if (f === 'nf_conntrack_count') continue; // the host's own traffic moves it
    try {
      sysctls[f] = readFileSync(`${dir}/${f}`, 'utf8').trim();
    } catch {
      // write-only or unreadable entries
    }
  }
  sysctls.ip_forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const bpf = (kind: string): number[] => (JSON.parse(sh('bpftool', ['-j', kind, 'list']) || '[]') as { id: number }[]).map((x) => x.id).sort((a, b) => a - b);
  return {
    namedNetns: readdirSync('/run/netns').sort(),
    progs: bpf('prog'),
    links: bpf('link'),
    sysctls,
    hostLinks: (JSON.parse(sh('ip', ['-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).sort(),
    hostRuleset: sh('nft', ['list', 'ruleset']),
  };
}

/** Processes whose network namespace is `inode`: none may outlive the demo. */
function processesIn(inode: number): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) === `net:[${inode}]`) pids.push(Number(pid));
    } catch {
      // exited
    }
  }
  return pids;
}

async function expectNothingLeft(before: Record<string, unknown>, inode: number): Promise<void> {
  expect(await waitNoCtopPrograms()).toEqual([]);
  // the kernel frees programs and links after the last fd closes (RCU): poll briefly
  let after = machineState();
  for (let i = 0; i < 50 && JSON.stringify(after) !== JSON.stringify(before); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = machineState();
  }
  expect(after).toEqual(before);
  expect(processesIn(inode)).toEqual([]);
}

describe('ctop demo', () => {
  it('--no-ui --json: the cache port leads, drops are counted, nothing is left', async () => {
    const before = machineState();
    const r = runCli(['demo', '--no-ui', '--duration', '15s', '--json', '--top', '100'], { timeoutMs: 60_000 });
    expect(r.stderr).toMatch(/fills its table to nf_conntrack_max = [\d,]+ entries \(\d+ MiB of kernel memory/);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as DemoReport;
    expect(d.schema).toBe('ctop.demo/v1');
    expect(d.commands).toEqual([
      `ctop snapshot --netns ${d.namespace} --duration 15000ms --top 100 --json`,
      `ctop advise --netns ${d.namespace} --duration 15000ms --json`,
    ]);
    const s = d.snapshot as SnapshotV1;
    const advice = d.advice as AdviceReport;
    expect(s.probe.tier).toBe('netfilter');
    expect(s.namespaces).toHaveLength(1);
    expect(s.namespaces[0]!.name).toBe(d.namespace);
    // the namespace's table reached the global limit without any sysctl change
    expect(s.namespaces[0]!.count).toBe(s.table.max);
    expect(d.plan.max).toBe(s.table.max);
    // the busiest ports: the flooded cache first
    expect(s.ports[0]).toMatchObject({ proto: 'udp', port: 11211 });
    // exact counts of the rest of the mix: every held TCP connection and every
    // assured stream is one insert, on the port the plan gave it
    expect(s.ports.find((p) => p.proto === 'tcp' && p.port === 443)).toMatchObject({ inserts: d.plan.heldTcp, drops: 0 });
    const range = s.ports.filter((p) => p.proto === 'udp' && p.port >= 20000 && p.port < 20064);
    expect(range).toHaveLength(64);
    expect(range.reduce((a, p) => a + p.inserts, 0)).toBe(d.plan.streamFlows);
    expect(range.every((p) => p.drops === 0)).toBe(true);
    // drops: the kernel's statistic (ctnetlink) and what the BPF program matched
    // to packets agree, and every one of them was the cache's
    const diag = JSON.stringify({ totals: s.totals, overflow: s.overflow, ports: s.ports.slice(0, 3), namespaces: s.namespaces });
    expect(s.totals.drops, diag).toBeGreaterThan(1000);
    expect(s.totals.dropsAttributed, diag).toBe(s.totals.drops);
    expect(s.ports[0]!.drops, diag).toBe(s.totals.drops);
    // assured streams cannot be evicted; the cache's unreplied flows can
    expect(s.totals.earlyDrops).toBeGreaterThan(0);
    // the advice: the two UDP services that fill the table (the port range as one candidate), then TCP
    const cands = advice.namespaces[0]!.notrack.candidates.map((c) => `${c.proto}/${c.port}`);
    expect(cands.slice(0, 2).sort()).toEqual(['udp/11211', 'udp/20000']);
    await expectNothingLeft(before, s.namespaces[0]!.inode);
  });

  it('--small says up front that it stays below the limit, and drops nothing', async () => {
    const before = machineState();
    const r = runCli(['demo', '--no-ui', '--small', '--duration', '4s', '--json'], { timeoutMs: 60_000 });
    expect(r.stderr).toMatch(/holds at most [\d,]+ entries .*no drops/);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as DemoReport;
    expect(d.plan.size).toBe('small');
    const s = d.snapshot as SnapshotV1;
    expect(s.namespaces[0]!.count).toBeLessThanOrEqual(d.plan.entries);
    expect(s.namespaces[0]!.count).toBeGreaterThan(d.plan.streamFlows);
    expect(s.totals.drops).toBe(0);
    await expectNothingLeft(before, s.namespaces[0]!.inode);
  });

  it('the live screen shows the namespace filling and the cache port refused; q removes everything', async () => {
    const before = machineState();
    const pane = new Tmux();
    try {
      pane.start(['demo'], [100, 30]);
      // printed text: read with wrapped lines joined (a wrap on a space would lose it)
      const intro = await pane.waitFor((x) => /opens in \d s; q quits/.test(x), 'the plan', undefined, { joined: true });
      expect(intro).toMatch(/fills its table to nf_conntrack_max = [\d,]+ entries/);
      const ns = /ctop-demo-\d+/.exec(intro)![0];
      const inode = statSync(`/run/netns/${ns}`).ino;
      // full: the fill line at 100 %, and the cache port among the refused
      const full = await pane.waitFor(
        (x) => /table .*100\.0%[\s\S]*Refused by conntrack[\s\S]*ports: udp\/11211 [\d,.]+/.test(x),
        'a full table refusing the cache port',
        30_000,
      );
      expect(full).toMatch(/udp 11211/);
      pane.keys('q');
      const end = await pane.waitFor((x) => /ctop-exit=\d+/.test(x), 'the exit status', undefined, { joined: true });
      expect(end).toMatch(/ctop-exit=0/);
      expect(end).toMatch(/ctop-demo-\d+ and its traffic are gone/);
      await expectNothingLeft(before, inode);
    } finally {
      pane.destroy();
    }
  });

  it('bad command lines: one line and a hint, exit 2, nothing made', () => {
    const before = readdirSync('/run/netns').sort();
    for (const [args, message] of [
      [['demo', '--json'], /--json needs --no-ui/],
      [['demo'], /the live screen needs a terminal/], // stdin and stdout are pipes here
      [['demo', '--no-ui', '--duration', '1s'], /--duration: '1s' is out of range/],
      [['demo', '--no-ui', '--top', 'x'], /--top/],
    ] as const) {
      const r = runCli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(expectOneLineError(r.stderr).message).toMatch(message);
    }
    expect(readdirSync('/run/netns').sort()).toEqual(before);
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    it(`${signal} mid-run: exit ${code}, nothing left`, async () => {
      const before = machineState();
      const { proc, done } = await startCli(['demo', '--no-ui', '--duration', '30s'], /traffic for/);
      const ns = `ctop-demo-${proc.pid}`;
      const inode = statSync(`/run/netns/${ns}`).ino;
      // mid-fill: the streams are being sent, the TCP connections held
      await new Promise((r) => setTimeout(r, 3000));
      expect(processesIn(inode).length).toBeGreaterThan(0);
      proc.kill(signal);
      const r = await done;
      expect(r.code).toBe(code);
      await expectNothingLeft(before, inode);
    });
  }
});
