/**
 * Who holds the table, live: a lab holds 3,000 long-lived TCP connections on
 * one port next to a UDP flood on another. The live screen (not a replay), in
 * tmux, lists the TCP port though it makes no new entries, with its
 * occupancy equal to `conntrack -L`'s count for that port, and its hash
 * panel says measured; `snapshot --json`, `record` and the exporter's gauge
 * carry the same figure.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotV1 } from '../../src/model/snapshot.js';
import { LOADGEN, createLab, ctCount, holdTcp, startServer, type Lab } from '../lab/netns.js';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, waitNoCtopPrograms } from '../support/cli.js';
import { freePort } from '../support/prometheus.js';
import { Tmux } from '../support/tmux.js';

const TCP_PORT = 5201;
const UDP_PORT = 9999;
const HELD = 3000;

let lab: Lab;
let tmux: Tmux;
let server: { stop(): Promise<unknown> };
let held: { release(): Promise<unknown> };

/** The TCP port's entries as the kernel lists them. */
const tcpListed = (): number => ctCount(lab.srv, ['-p', 'tcp', '--dport', String(TCP_PORT)]);

beforeAll(async () => {
  lab = createLab();
  server = await startServer(lab, { tcp: [TCP_PORT], udp: [UDP_PORT] }, { maxMs: 170_000 });
  held = await holdTcp(lab, `${lab.srvAddr4}:${TCP_PORT}`, HELD, { maxMs: 160_000 });
  // The flood: 1,000 new UDP flows every half second, bounded to 150 rounds.
  lab.spawn(lab.cli, ['bash', '-c', `for i in $(seq 150); do ${process.execPath} ${LOADGEN} --udp ${lab.srvAddr4}:${UDP_PORT} --flows 1000 --max-ms 5000 >/dev/null || exit 1; sleep 0.5; done`]);
  tmux = new Tmux();
}, 120_000);

afterEach(() => tmux?.killSession());

afterAll(async () => {
  tmux?.destroy();
  await held?.release();
  await server?.stop();
  lab?.destroy();
  expect(await waitNoCtopPrograms()).toEqual([]);
});

describe('occupancy, live (netfilter tier, background census)', () => {
  it('the live screen lists the TCP port holding the table, with conntrack -L’s count, and a measured hash panel', async () => {
    const listed = tcpListed();
    expect(listed).toBe(HELD);
    tmux.start(['top', '--netns', lab.srv, '--interval', '1s'], [100, 30]);
    const row = new RegExp(`tcp ${TCP_PORT} .* ${HELD.toLocaleString('en-US')} *│`);
    const s = await tmux.waitFor((x) => row.test(x) && /measured \d+s ago/.test(x), `the tcp ${TCP_PORT} row with ${HELD} held and a measured hash panel`, 20_000);
    // no new TCP entries: its inserts are 0, it is listed for what it holds
    expect(s).toMatch(new RegExp(`tcp ${TCP_PORT} +\\S+ +0 +0 +0 +0 +0\\.0% +3,000`)); // ins/s, 10s, 60s, drops/s, share, occ
    expect(s).toMatch(new RegExp(`udp ${UDP_PORT} `));
    expect(s).toMatch(/occ census \d+s ago/);
    expect(s).toMatch(/measured \d+s ago  longest \d+\/50/);
    // sort by occupancy (inserts, 10 s, 60 s, drops, occupancy): the TCP port comes first
    for (let i = 0; i < 4; i++) tmux.keys('s');
    const sorted = await tmux.waitFor((x) => /by occupancy/.test(x), 'sorted by occupancy');
    const rows = sorted.split('\n').filter((l) => /│ (tcp|udp) \d+/.test(l));
    expect(rows[0]).toMatch(new RegExp(`tcp ${TCP_PORT} `));
    tmux.keys('q');
    await tmux.waitFor((x) => /ctop-exit=0/.test(x), 'ctop to quit');
  }, 60_000);

  it('--occupancy ctnetlink: the same count by dumps, and the hash panel says model', async () => {
    tmux.start(['top', '--netns', lab.srv, '--occupancy', 'ctnetlink'], [100, 30]);
    const row = new RegExp(`tcp ${TCP_PORT} .* ${HELD.toLocaleString('en-US')} *│`);
    const s = await tmux.waitFor((x) => row.test(x) && /occ census \d+s ago/.test(x), `the tcp ${TCP_PORT} row counted by ctnetlink`, 20_000);
    expect(s).toMatch(/model \(uniform hash, Poisson λ=/);
    expect(s).not.toMatch(/measured \d+s ago/);
    expect(tcpListed()).toBe(HELD);
    tmux.keys('q');
    await tmux.waitFor((x) => /ctop-exit=0/.test(x), 'ctop to quit');
  }, 60_000);

  it('snapshot --json: the port row and the occupancy section hold conntrack -L’s count', () => {
    const r = runCli(['snapshot', '--netns', lab.srv, '-d', '1s', '--json'], { timeoutMs: 60_000 });
    expect(r.stderr).not.toMatch(/ctop: (?!netfilter tier)/);
    expect(r.code).toBe(0);
    const snap = JSON.parse(r.stdout) as SnapshotV1;
    const listed = tcpListed();
    expect(listed).toBe(HELD);
    const row = snap.ports.find((p) => p.proto === 'tcp' && p.port === TCP_PORT);
    expect(row).toMatchObject({ inserts: 0, occupancy: listed });
    expect(snap.occupancy).toMatchObject({ method: 'bpf-hash-walk', live: false });
    expect(snap.occupancy!.ports.find((p) => p.port === TCP_PORT)?.entries).toBe(listed);
    // the UDP port's entries change with the flood: between two listings around the census
    const udp = snap.occupancy!.ports.find((p) => p.proto === 'udp' && p.port === UDP_PORT)?.entries ?? 0;
    expect(udp).toBeGreaterThan(500);
    expect(snap.hashBuckets).toMatchObject({ method: 'bpf-hash-walk' });
    expect(snap.hashBuckets!.histogram.reduce((a, h) => a + h.buckets, 0)).toBe(snap.hashBuckets!.buckets);
  }, 90_000);

  it('ctop serve: the occupancy gauge of the TCP port equals conntrack -L’s count; the census reports its cost', async () => {
    const port = await freePort();
    const ctop = await startCli(['serve', '--netns', lab.srv, '--listen', `127.0.0.1:${port}`, '--top-ports', '2', '--every', '1s'], /serving metrics on/);
    try {
      const srv = lab.netnsInode(lab.srv);
      const series = `ctop_port_occupancy_entries{netns="${srv}",family="ipv4",proto="tcp",port="${TCP_PORT}"}`;
      let text = '';
      const end = Date.now() + 15_000;
      while (!text.includes(series) && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 250));
        text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      }
      const value = (name: string): number => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(value(series)).toBe(tcpListed());
      // the flood's port has its own series; nothing is left for "other" (the bound is unit-tested)
      expect(value(`ctop_port_occupancy_entries{netns="${srv}",family="ipv4",proto="udp",port="${UDP_PORT}"}`)).toBeGreaterThan(500);
      expect(value('ctop_port_occupancy_entries{port="other"}')).toBe(0);
      expect(value('ctop_occupancy_census_budget_ratio')).toBe(0.02);
      expect(value('ctop_occupancy_census_cpu_ratio')).toBeGreaterThan(0);
      expect(value('ctop_occupancy_census_age_seconds')).toBeLessThan(10);
    } finally {
      ctop.proc.kill('SIGTERM');
      await ctop.done;
    }
  }, 60_000);

  it('ctop record: every window carries the occupancy and the census cost', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctop-occ-'));
    try {
      const out = join(dir, 'rec.jsonl');
      const r = runCli(['record', '--netns', lab.srv, '-d', '3s', '--every', '1s', '-o', out], { timeoutMs: 60_000 });
      expect(r.code).toBe(0);
      const windows = readFileSync(out, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l) as SnapshotV1);
      expect(windows).toHaveLength(3);
      const last = windows.at(-1)!;
      expect(last.ports.find((p) => p.proto === 'tcp' && p.port === TCP_PORT)?.occupancy).toBe(tcpListed());
      expect(last.occupancy!.cost).toMatchObject({ budgetShare: 0.02 });
      expect(last.occupancy!.cost!.censuses).toBeGreaterThanOrEqual(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
