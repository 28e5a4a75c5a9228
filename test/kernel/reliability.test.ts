/**
 * Can ctop hurt the host? Kill it at random moments, signal it, crash it,
 * feed its netfilter program hostile packets, flood it with ten million
 * distinct tuples, run it without privileges, and check that a read-only run
 * changes nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { loadAddon } from '../../src/native/addon.js';
import { createLab, runLoad, startServer, type Lab } from '../lab/netns.js';
import { CLI, ROOT, expectOneLineError, runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { killStrayClis } from '../support/cli.js';
import { afterEach as afterEachKill } from 'vitest';

// a failed assertion must not leave a ctop attached for the next test
afterEachKill(killStrayClis);
import { execFileSync, spawnSync } from 'node:child_process';

const FLOOD = join(ROOT, 'tools', 'bin', 'flood');

/** Everything ctop could leave behind: programs and maps no process holds
 * (their links go with them: a link holds its program). */
async function expectNothingLeft(): Promise<void> {
  expect(await waitNoCtopPrograms()).toEqual([]);
}

/** Traffic still flows: a TCP connection completes and UDP reaches the server. */
async function expectTrafficFlows(lab: Lab, tcpPort: number, udpPort: number): Promise<void> {
  const t = await runLoad(lab, ['--tcp', `${lab.srvAddr4}:${tcpPort}`, '--flows', '2']);
  expect(t.established).toBe(2);
  const u = await runLoad(lab, ['--udp', `${lab.srvAddr4}:${udpPort}`, '--flows', '2']);
  expect(u.sent).toBe(2);
}

describe('killed, signalled or crashed: nothing stays attached, traffic flows', () => {
  let lab: Lab;
  let stop: (() => Promise<unknown>) | undefined;

  beforeAll(async () => {
    lab = createLab();
    stop = (await startServer(lab, { udp: [9100, 9101], tcp: [9102] }, { maxMs: 600_000 })).stop;
  });

  afterAll(async () => {
    await stop?.();
    lab?.destroy();
  });

  it('SIGKILL at 100 random moments (loading, attaching, steady state, during a flood)', async () => {
    let floods = 0;
    for (let i = 0; i < 100; i++) {
      // 0-1200 ms covers node start-up, BPF load, per-namespace attach and the sampling loop
      const delayMs = Math.floor(Math.random() * 1200);
      const p = spawn(process.execPath, [CLI, 'snapshot', '--duration', '30s'], { stdio: 'ignore' });
      const exited = new Promise<void>((r) => p.on('close', () => r()));
      // every fourth run is killed while a flood of new flows is in progress
      const flood = i % 4 === 0 ? runLoad(lab, ['--udp', `${lab.srvAddr4}:9101`, '--flows', '3000']).then(() => floods++) : undefined;
      await new Promise((r) => setTimeout(r, delayMs));
      p.kill('SIGKILL');
      await exited;
      await flood;
      await expectNothingLeft();
    }
    expect(floods).toBe(25);
    await expectTrafficFlows(lab, 9102, 9100);
  });

  for (const [sig, code] of [
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`${sig}: detaches and exits ${code}`, async () => {
      const { proc, done } = await startCli(['snapshot', '--duration', '30s'], /sampling for/);
      proc.kill(sig);
      const r = await done;
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      await expectNothingLeft();
      await expectTrafficFlows(lab, 9102, 9100);
    });
  }

  it('SIGINT (Ctrl-C): ends the window early, prints the report, detaches, exits 0', async () => {
    const { proc, done } = await startCli(['snapshot', '--duration', '30s', '--json'], /sampling for/);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:9101`, '--flows', '10']);
    proc.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as SnapshotV1;
    expect(s.durationMs).toBeLessThan(30_000);
    await expectNothingLeft();
  });

  it('an uncaught exception: reported as an internal error, detaches, exits 1', async () => {
    const r = spawnSync(process.execPath, [CLI, 'snapshot', '--duration', '30s'], {
      encoding: 'utf8',
      env: { ...process.env, CTOP_TEST_FAULT: 'uncaught' },
      timeout: 30_000,
    });
    expect(r.status).toBe(ExitCode.failure);
    expect(r.stderr).toMatch(/ctop: internal error, please report it:\nError: injected fault/);
    await expectNothingLeft();
    await expectTrafficFlows(lab, 9102, 9100);
  });
});

describe('the netfilter program accepts every packet (BPF_PROG_TEST_RUN)', () => {
  const NF_ACCEPT = 1;
  const PF = { ipv4: 2, ipv6: 10 } as const;
  const HOOKS = { PRE_ROUTING: 0, LOCAL_IN: 1, FORWARD: 2, LOCAL_OUT: 3, POST_ROUTING: 4 } as const;

  function ipv4(proto: number, l4: Buffer, opts: { fragOffset?: number; ihl?: number; totalLen?: number } = {}): Buffer {
    const ihl = opts.ihl ?? 5;
    const h = Buffer.alloc(ihl * 4);
    h[0] = 0x40 | ihl;
    h.writeUInt16BE(opts.totalLen ?? h.length + l4.length, 2);
    h.writeUInt16BE(opts.fragOffset ?? 0, 6);
    h[8] = 64;
    h[9] = proto;
    Buffer.from([198, 18, 0, 1]).copy(h, 12);
    Buffer.from([198, 18, 0, 2]).copy(h, 16);
    return Buffer.concat([h, l4]);
  }

  function ipv6(next: number, rest: Buffer): Buffer {
    const h = Buffer.alloc(40);
    h[0] = 0x60;
    h.writeUInt16BE(rest.length, 4);
    h[6] = next;
    h[7] = 64;
    Buffer.from('20010002000000000000000000000001', 'hex').copy(h, 8);
    Buffer.from('20010002000000000000000000000002', 'hex').copy(h, 24);
    return Buffer.concat([h, rest]);
  }

  const eth = (type: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(14);
    h.writeUInt16BE(type, 12);
    return Buffer.concat([h, payload]);
  };

  const udp = Buffer.from([0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
  const ext = (next: number, len8: number): Buffer => {
    const b = Buffer.alloc(8 * (len8 + 1));
    b[0] = next;
    b[1] = len8;
    return b;
  };
  const frag = (next: number, offset: number): Buffer => {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE(offset << 3, 2);
    return b;
  };

  const v4: Record<string, Buffer> = {
    'UDP': ipv4(17, udp),
    'TCP header cut short': ipv4(6, Buffer.from([0x01, 0x02])),
    'no L4 header at all': ipv4(17, Buffer.alloc(0)),
    'a non-first fragment': ipv4(17, udp, { fragOffset: 185 }),
    'IP options (ihl 15)': ipv4(17, udp, { ihl: 15 }),
    'ICMP error quoting another packet': ipv4(1, Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), ipv4(17, udp)])),
    'an unknown protocol (253)': ipv4(253, Buffer.alloc(16)),
    'a length field that lies': ipv4(17, udp, { totalLen: 65535 }),
  };
  const v6: Record<string, Buffer> = {
    'UDP': ipv6(17, udp),
    'hop-by-hop + routing + destination options': ipv6(0, Buffer.concat([ext(43, 0), ext(60, 1), ext(17, 0), udp])),
    'a non-first fragment': ipv6(44, Buffer.concat([frag(17, 100), udp])),
    'ICMPv6 echo': ipv6(58, Buffer.from([128, 0, 0, 0, 0, 1, 0, 1])),
    'an unknown next header (253)': ipv6(253, Buffer.alloc(16)),
    'extension header cut short': ipv6(0, Buffer.from([17])),
  };

  it('returns NF_ACCEPT for every crafted packet, at every hook', () => {
    const addon = loadAddon();
    const probe = new addon.Probe({ tier: 'netfilter', maxPorts: 1024, maxTuples: 1024, maxDropTuples: 1024, targetNetns: 0 });
    try {
      let runs = 0;
      for (const [fam, pkts, ethType] of [
        ['ipv4', v4, 0x0800],
        ['ipv6', v6, 0x86dd],
      ] as const) {
        for (const [name, pkt] of Object.entries(pkts)) {
          for (const [hookName, hook] of Object.entries(HOOKS)) {
            // LOCAL_OUT takes a bare IP packet, the other hooks an Ethernet frame
            const data = hook === HOOKS.LOCAL_OUT ? pkt : eth(ethType, pkt);
            const verdict = probe.testRunNf(data, PF[fam], hook);
            expect(verdict, `${fam} ${name} at ${hookName}`).toBe(NF_ACCEPT);
            runs++;
          }
        }
      }
      expect(runs).toBe((Object.keys(v4).length + Object.keys(v6).length) * 5);
    } finally {
      probe.close();
    }
  });
});

describe('ten million distinct tuples', () => {
  it('memory stays bounded and the overflow counters say what was not recorded', async () => {
    const lab = createLab();
    let ctop: ChildProcess | undefined;
    try {
      const srv = lab.netnsInode(lab.srv);
      // An independent count of what conntrack inserts: nft's own counter of
      // packets in state NEW on postrouting at priority 300, after filter and
      // NAT, right before the confirm step. Each flood packet is its own flow.
      lab.exec(lab.srv, ['nft', 'add chain inet ctop_test post { type filter hook postrouting priority 300; }; add rule inet ctop_test post udp dport 9 ct state new counter']);
      // the server namespace floods its own loopback: 198.18.0.2 is its address
      const { proc, done } = await startCli(['snapshot', '--json', '--duration', '10m', '--top', '0', '--netns', lab.srv], /sampling for/);
      ctop = proc;
      const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0);
      const rssBefore = rssKb();
      const out = execFileSync('ip', ['netns', 'exec', lab.srv, FLOOD, 'new', '--dst', lab.srvAddr4, '--port', '9', '--count', '10000000', '--max-ms', '240000'], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      const flood = JSON.parse(out) as { sent: number; errors: number; timedOut: boolean };
      expect(flood.timedOut).toBe(false);
      // a packet conntrack refuses (table full and early_drop found nothing
      // to evict) fails its send: the flood counts it as an error
      expect(flood.sent + flood.errors).toBe(10_000_000);
      await new Promise((r) => setTimeout(r, 1500)); // one more sampling tick under the flood's tail
      const rssAfter = rssKb();
      proc.kill('SIGINT');
      const r = await done;
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout) as SnapshotV1;
      const nftNew = Number(/packets (\d+)/.exec(lab.exec(lab.srv, ['nft', 'list', 'chain', 'inet', 'ctop_test', 'post']))?.[1]);
      // the table churns through early_drop at the default limit: ten million
      // new entries; every one counted, as the kernel's own counter says
      expect(nftNew).toBe(flood.sent);
      expect(s.totals.inserts).toBe(nftNew);
      // and every refused packet attributed, as the kernel's statistic counts them
      expect(s.totals.dropsAttributed).toBe(s.totals.drops);
      expect(s.ports.find((p) => p.netns === srv && p.port === 9)?.inserts).toBe(nftNew);
      // the per-CPU tuple rings hold the newest flows of each CPU between
      // two reads; every new flow is either a reported tuple (each flood
      // tuple is new once) or counted as tuple overflow, exactly
      // (refused packets' tuples are rows too, with inserts 0)
      const mine = s.tuples.filter((t) => t.netns === srv && t.dport === 9 && t.inserts > 0);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine.every((t) => t.inserts === 1)).toBe(true);
      // one read (the window's end) hands out at most what the rings hold
      expect(mine.length).toBeLessThanOrEqual(s.overflow.tupleMapCapacity);
      expect(s.overflow.tupleMapEntries).toBeLessThanOrEqual(s.overflow.tupleMapCapacity);
      expect(s.overflow.tupleMapFull + mine.length).toBe(nftNew);
      expect(s.overflow.portMapFull).toBe(0);
      // user-space memory does not grow with the number of tuples
      expect(rssAfter - rssBefore).toBeLessThan(64 * 1024);
    } finally {
      if (ctop && ctop.exitCode === null) ctop.kill('SIGKILL');
      lab.destroy();
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
  }, 400_000);
});

describe('privileges are checked before anything is loaded', () => {
  const asRootWithout = (caps: string): string[] => ['setpriv', `--bounding-set=-${caps.split(',').join(',-')}`, '--inh-caps=-all', '--'];

  it('CAP_BPF without CAP_PERFMON (nor CAP_SYS_ADMIN, which would stand in for it)', () => {
    const r = runCli(['snapshot', '--duration', '1s'], { prefix: asRootWithout('perfmon,sys_admin') });
    expect(r.code).toBe(ExitCode.privileges);
    expect(expectOneLineError(r.stderr).message).toBe('ctop: this root process lacks CAP_PERFMON, CAP_SYS_ADMIN');
  });

  it('no CAP_NET_ADMIN', () => {
    const r = runCli(['doctor'], { prefix: asRootWithout('net_admin') });
    expect(r.code).toBe(ExitCode.privileges);
    expect(expectOneLineError(r.stderr).message).toBe('ctop: this root process lacks CAP_NET_ADMIN');
  });

  it('loaded nothing', async () => {
    expect(await waitNoCtopPrograms(500)).toEqual([]);
  });
});

describe('a read-only run changes nothing', () => {
  interface HostState {
    hostSysctls: string;
    labSysctls: string;
    hostRuleset: string;
    labRuleset: string;
    labEntries: string;
  }

  function state(lab: Lab): HostState {
    const sysctls = (ns?: string): string => {
      const dir = '/proc/sys/net/netfilter';
      // inside a namespace some files (nf_log_all_netns) are not readable: skip those
      const read = (f: string): string => {
        try {
          return ns ? execFileSync('ip', ['netns', 'exec', ns, 'cat', join(dir, f)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) : readFileSync(join(dir, f), 'utf8');
        } catch {
          return '(unreadable)';
        }
      };
      // nf_conntrack_count moves with traffic, not with ctop
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isFile() && d.name !== 'nf_conntrack_count')
        .map((d) => d.name)
        .sort()
        .map((f) => `${f}=${read(f).trim()}`)
        .join('\n');
    };
    const entries = execFileSync('ip', ['netns', 'exec', lab.srv, 'conntrack', '-L', '-o', 'id'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      // drop the countdown (second field): it ticks on its own
      .map((l) => l.replace(/^(\S+\s+\d+\s+)\d+\s/, '$1'))
      .sort()
      .join('\n');
    return {
      hostSysctls: sysctls(),
      labSysctls: sysctls(lab.srv),
      hostRuleset: execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }),
      labRuleset: execFileSync('ip', ['netns', 'exec', lab.srv, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }),
      labEntries: entries,
    };
  }

  it('sysctls, rulesets and conntrack entries are the same before and after', async () => {
    const lab = createLab();
    const server = await startServer(lab, { udp: [9200], tcp: [9201] });
    try {
      await runLoad(lab, ['--tcp', `${lab.srvAddr4}:9201`, '--flows', '20']);
      const before = state(lab);
      expect(before.labEntries.split('\n').length).toBeGreaterThanOrEqual(20);
      expect(runCli(['snapshot', '--duration', '2s']).code).toBe(0);
      expect(runCli(['doctor']).code).toBe(0);
      const after = state(lab);
      expect(after).toEqual(before);
    } finally {
      await server.stop();
      lab.destroy();
    }
  });
});
