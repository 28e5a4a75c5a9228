/**
 * `ctop census` against a table of known composition (200,000+ entries in a
 * lab namespace, timeouts long enough that nothing expires mid-test): the
 * per-port, per-state, assured and unreplied counts equal what `conntrack -L`
 * lists, by both methods (the in-kernel walk and the ctnetlink dump); the
 * measured chain histogram covers every bucket and every chain node (each
 * entry is hashed twice, once per direction); forced fallbacks say so.
 * Hundreds of ports and of source addresses make more keys than the walk's
 * per-run slots (64 groups, 256 addresses per CPU), so their counts also pass
 * through evicted slots; every address is checked against conntrack -L.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CensusReport } from '../../src/model/census.js';
import { byPort } from '../../src/model/census.js';
import { TableWalker, bucketsPerRun } from '../../src/source/hashWalk.js';
import type { CensusCounts, CensusCountsGroup } from '../../src/model/censusCounts.js';
import { createLab, holdTcp, runLoad, startServer, type Lab } from '../lab/netns.js';
import { ROOT, expectOneLineError, runCli, waitNoCtopPrograms } from '../support/cli.js';
import { join } from 'node:path';

const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
/** The composition: raw-socket floods (every packet a new, unreplied UDP entry) plus real TCP and UDP flows. */
const FLOODS: { family: 'ipv4' | 'ipv6'; port: number; count: number; ports?: number }[] = [
  { family: 'ipv4', port: 5001, count: 120_000 },
  { family: 'ipv6', port: 5002, count: 60_000 },
  { family: 'ipv4', port: 5003, count: 25_000 },
  // 20 entries on each of ports 6000-6399: 400 groups
  { family: 'ipv4', port: 6000, count: 8_000, ports: 400 },
];
/** 3 entries to port 7000 from each of 300 more sources (198.19.0.2-198.19.1.45: flood's
 * source moves on every 60,000 flows, and each of these floods starts where one begins). */
const MANY_SOURCES = { port: 7000, sources: 300, perSource: 3, firstSource: 2 };
const TCP_HELD = 150; // ESTABLISHED, assured
const TCP_CLOSED = 100; // connect, write, close: TIME_WAIT/CLOSE entries
const UDP_ANSWERED = 300; // answered datagrams: seen reply
const EXPECTED =
  FLOODS.reduce((a, f) => a + f.count, 0) + MANY_SOURCES.sources * MANY_SOURCES.perSource + TCP_HELD + TCP_CLOSED + UDP_ANSWERED;

/** Per (family, proto, port, state) counts as `conntrack -L` prints them, aggregated by awk in the namespace. */
function conntrackGroups(lab: Lab): Map<string, { entries: number; assured: number; unreplied: number }> {
  const awk =
    '{ proto=$1; state="-"; if (proto=="tcp") state=$4; dport=""; for (i=1;i<=NF;i++) if ($i ~ /^dport=/) { dport=substr($i,7); break }; ' +
    'a = ($0 ~ /\\[ASSURED\\]/) ? 1 : 0; u = ($0 ~ /\\[UNREPLIED\\]/) ? 1 : 0; k = fam " " proto " " dport " " state; n[k]++; as[k]+=a; un[k]+=u } ' +
    'END { for (k in n) print k, n[k], as[k], un[k] }';
  const out = new Map<string, { entries: number; assured: number; unreplied: number }>();
  for (const fam of ['ipv4', 'ipv6']) {
    const text = lab.exec(lab.srv, ['bash', '-o', 'pipefail', '-c', `conntrack -L -f ${fam} 2>/dev/null | awk -v fam=${fam} '${awk}'`], { timeoutMs: 60_000 });
    for (const line of text.trim().split('\n').filter(Boolean)) {
      const [f, proto, port, state, n, a, u] = line.split(' ');
      out.set(`${f} ${proto} ${port || 0} ${state}`, { entries: Number(n), assured: Number(a), unreplied: Number(u) });
    }
  }
  return out;
}

/** Seconds left on every TCP entry, per state, as `conntrack -L` prints them (the third field). */
function conntrackTcpRemaining(lab: Lab): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const fam of ['ipv4', 'ipv6']) {
    const text = lab.exec(lab.srv, ['bash', '-o', 'pipefail', '-c', `conntrack -L -f ${fam} -p tcp 2>/dev/null | awk '{ print $4, $3 }'`], { timeoutMs: 60_000 });
    for (const line of text.trim().split('\n').filter(Boolean)) {
      const [state, left] = line.split(' ');
      out.set(state!, [...(out.get(state!) ?? []), Number(left)]);
    }
  }
  return out;
}

/** Entries per original source and per original destination address, as `conntrack -L` lists them. */
function conntrackAddresses(lab: Lab): { src: Map<string, number>; dst: Map<string, number> } {
  const awk = '{ s=""; d=""; for (i=1;i<=NF;i++) { if (s=="" && $i ~ /^src=/) s=substr($i,5); if (d=="" && $i ~ /^dst=/) d=substr($i,5) }; print s, d }';
  const out = { src: new Map<string, number>(), dst: new Map<string, number>() };
  for (const fam of ['ipv4', 'ipv6']) {
    const text = lab.exec(lab.srv, ['bash', '-o', 'pipefail', '-c', `conntrack -L -f ${fam} 2>/dev/null | awk '${awk}'`], { timeoutMs: 60_000 });
    for (const line of text.trim().split('\n').filter(Boolean)) {
      const [s, d] = line.split(' ');
      out.src.set(s!, (out.src.get(s!) ?? 0) + 1);
      out.dst.set(d!, (out.dst.get(d!) ?? 0) + 1);
    }
  }
  return out;
}

/** Every source and destination row of the census (--top 0: all) equals conntrack -L's count, none overflowed. */
function expectAddressesMatch(r: CensusReport, inode: number, listed: { src: Map<string, number>; dst: Map<string, number> }): void {
  const ns = r.namespaces.find((n) => n.inode === inode)!;
  const rows = (a: { addr: string; entries: number }[]) => new Map(a.map((x) => [x.addr, x.entries] as [string, number]).sort());
  expect(ns.sourceOverflow).toBe(0);
  expect(ns.destinationOverflow).toBe(0);
  expect(listed.src.size).toBeGreaterThan(300);
  expect(rows(ns.topSources)).toEqual(new Map([...listed.src].sort()));
  expect(rows(ns.topDestinations)).toEqual(new Map([...listed.dst].sort()));
}

/**
 * The census's histogram against `conntrack -L` listed `driftS` seconds or less
 * later: entries only age, so for every slot's upper edge h the census's count
 * of entries with at most h seconds left is between the listing's count of
 * r + driftS <= h and its count of r <= h.
 */
function expectRemainingMatches(r: CensusReport, inode: number, listed: Map<string, number[]>, driftS: number): void {
  const ns = r.namespaces.find((n) => n.inode === inode)!;
  expect(ns.tcpRemaining).not.toBeNull();
  const census = new Map(ns.tcpRemaining!.map((x) => [x.state, x.slots]));
  expect([...census.keys()].sort()).toEqual([...listed.keys()].sort());
  for (const [state, left] of listed) {
    const slots = census.get(state)!;
    expect(slots.reduce((a, x) => a + x.entries, 0), state).toBe(left.length);
    for (const edge of slots.map((x) => x.hiS ?? Infinity)) {
      const inCensus = slots.filter((x) => (x.hiS ?? Infinity) <= edge).reduce((a, x) => a + x.entries, 0);
      expect(inCensus, `${state} <= ${edge} s`).toBeGreaterThanOrEqual(left.filter((x) => x + driftS <= edge).length);
      expect(inCensus, `${state} <= ${edge} s`).toBeLessThanOrEqual(left.filter((x) => x <= edge).length);
    }
  }
}

function censusGroups(r: CensusReport, inode: number): Map<string, { entries: number; assured: number; unreplied: number }> {
  const ns = r.namespaces.find((n) => n.inode === inode);
  const out = new Map<string, { entries: number; assured: number; unreplied: number }>();
  for (const g of ns?.groups ?? []) {
    out.set(`${g.family} ${g.proto} ${g.port} ${g.state ?? '-'}`, { entries: g.entries, assured: g.assured, unreplied: g.unreplied });
  }
  return out;
}

function census(args: string[], env: NodeJS.ProcessEnv = {}): CensusReport {
  const r = runCli(['census', '--json', '--top', '0', '--rate-window', '0s', ...args], { env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`ctop census ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as CensusReport;
}

/** sizeof(struct nf_conn) as bpftool reads the kernel's BTF. */
let nfConnBytesCached: number | undefined;
function nfConnBytes(): number {
  // the raw dump is large: read it once, filtered by grep
  nfConnBytesCached ??= Number(
    /size=(\d+)/.exec(
      execFileSync('bash', ['-c', "bpftool btf dump file /sys/kernel/btf/vmlinux format raw | grep -m1 \"STRUCT 'nf_conn' size=\""], { encoding: 'utf8' }),
    )![1],
  );
  return nfConnBytesCached;
}

/** The nf_conntrack slab's active objects, as /proc/slabinfo says. */
function slabActive(): number {
  const line = readFileSync('/proc/slabinfo', 'utf8').split('\n').find((l) => l.startsWith('nf_conntrack '))!;
  return Number(line.trim().split(/\s+/)[1]);
}

function kernelBuckets(): number {
  return Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim());
}

function leftovers(): string[] {
  const progs = JSON.parse(spawnSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8' }).stdout || '[]') as { name?: string }[];
  const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return [
    ...progs.filter((p) => (p.name ?? '').startsWith('ctop_walk')).map((p) => `prog ${p.name}`),
    ...ns.split('\n').filter((l) => l.startsWith('ctop-census-')),
  ];
}

describe('ctop census on a 200,000+ entry table of known composition', () => {
  let lab: Lab;
  let srvInode: number;
  let stopServer: (() => Promise<unknown>) | undefined;
  let releaseTcp: (() => Promise<unknown>) | undefined;
  let truth: Map<string, { entries: number; assured: number; unreplied: number }>;

  beforeAll(async () => {
    lab = createLab();
    srvInode = lab.netnsInode(lab.srv);
    // long timeouts in the lab namespace only, so nothing expires between the census and conntrack -L
    for (const [k, v] of [
      ['udp_timeout', 3600], ['udp_timeout_stream', 3600], ['tcp_timeout_time_wait', 3600], ['tcp_timeout_close', 3600],
      ['tcp_timeout_fin_wait', 3600], ['tcp_timeout_last_ack', 3600], ['tcp_timeout_close_wait', 3600], ['tcp_timeout_syn_sent', 3600],
    ] as const) {
      lab.exec(lab.srv, ['sysctl', '-qw', `net.netfilter.nf_conntrack_${k}=${v}`]);
    }
    stopServer = (await startServer(lab, { udp: [5353], tcp: [8080, 8443] })).stop;
    for (const f of FLOODS) {
      // the server namespace floods its own address (lo): every packet a new entry there
      const dst = f.family === 'ipv4' ? lab.srvAddr4 : lab.srvAddr6;
      const ports = f.ports ? ['--ports', String(f.ports)] : [];
      const out = lab.exec(lab.srv, [FLOOD, 'new', '--dst', dst, '--port', String(f.port), ...ports, '--count', String(f.count), '--max-ms', '60000'], { timeoutMs: 90_000 });
      const r = JSON.parse(out.trim().split('\n').pop()!) as { sent: number; errors: number };
      expect(r).toMatchObject({ sent: f.count, errors: 0 });
    }
    const m = MANY_SOURCES;
    const loop =
      `for k in $(seq ${m.firstSource} ${m.firstSource + m.sources - 1}); do ` +
      `${FLOOD} new --dst ${lab.srvAddr4} --port ${m.port} --count ${m.perSource} --start $((k * 60000)) --max-ms 10000 | tail -1; done`;
    const sent = lab.exec(lab.srv, ['bash', '-o', 'pipefail', '-c', loop], { timeoutMs: 120_000 }).trim().split('\n').map((l) => JSON.parse(l) as { sent: number; errors: number });
    expect(sent.reduce((a, r) => a + r.sent - r.errors, 0)).toBe(m.sources * m.perSource);
    releaseTcp = (await holdTcp(lab, `${lab.srvAddr4}:8080`, TCP_HELD)).release;
    await runLoad(lab, ['--tcp', `[${lab.srvAddr6}]:8443`, '--flows', String(TCP_CLOSED)]);
    await runLoad(lab, ['--udp', `${lab.srvAddr4}:5353`, '--flows', String(UDP_ANSWERED)]);
    // TCP teardown settles in well under a second on a veth pair
    await new Promise((r) => setTimeout(r, 1000));
    truth = conntrackGroups(lab);
  }, 300_000);

  afterAll(async () => {
    await releaseTcp?.();
    await stopServer?.();
    lab?.destroy();
  });

  it('the lab holds the composition it was built with', () => {
    const total = [...truth.values()].reduce((a, g) => a + g.entries, 0);
    expect(total).toBe(EXPECTED);
    expect(truth.get('ipv4 udp 5001 -')?.entries).toBe(120_000);
    expect(truth.get('ipv6 udp 5002 -')?.entries).toBe(60_000);
    expect([...truth.keys()].filter((k) => /^ipv4 udp 6\d\d\d -$/.test(k) && Number(k.split(' ')[2]) < 6400)).toHaveLength(400);
    expect(truth.get('ipv4 udp 6399 -')?.entries).toBe(20);
    expect(truth.get(`ipv4 udp ${MANY_SOURCES.port} -`)?.entries).toBe(MANY_SOURCES.sources * MANY_SOURCES.perSource);
    expect(truth.get('ipv4 tcp 8080 ESTABLISHED')).toEqual({ entries: TCP_HELD, assured: TCP_HELD, unreplied: 0 });
    // the closed connections sit in another TCP state than the held ones
    const tcpStates = new Set([...truth.keys()].filter((k) => k.split(' ')[1] === 'tcp').map((k) => k.split(' ')[3]));
    expect(tcpStates.size).toBeGreaterThanOrEqual(2);
  });

  it('the in-kernel walk counts exactly what conntrack -L lists, per port, state, assured and unreplied', () => {
    const t0 = Date.now();
    const r = census(['--netns', lab.srv], { CTOP_TEST_LOCATE: 'entry' });
    const listed = conntrackTcpRemaining(lab);
    expect(r.methods.occupancy).toBe('bpf-hash-walk');
    expect(r.methods.chains).toBe('bpf-hash-walk');
    // seconds left per TCP state (nf_conn.timeout - jiffies, over HZ), against conntrack -L
    expectRemainingMatches(r, srvInode, listed, Math.ceil((Date.now() - t0) / 1000) + 1);
    // Linux >= 6.0 (this machine: 6.18): the table is found from an entry ctop makes with the conntrack kfuncs,
    // beside the command's start-up (walkStart.ts): the programs and the table came from that early start
    expect(r.buckets.locatedBy).toBe('own-entry');
    expect(r.buckets.phasesMs?.startWaitMs).toBeGreaterThanOrEqual(0);
    // Linux >= 6.2: plain loads through bpf_rdonly_cast, several chains side by side
    expect(r.buckets.reads).toBe('direct');
    // the walking threads' CPU time: some, and no more than they could spend in the walk's wall time
    expect(r.buckets.walkCpuMs).toBeGreaterThan(0);
    expect(r.buckets.walkCpuMs!).toBeLessThanOrEqual(r.buckets.walkMs! * r.buckets.threads! + 5);
    // the runs shared by one thread per online CPU
    expect(r.buckets.threads).toBe(Math.min(16, cpus().length));
    expect(new Map([...censusGroups(r, srvInode)].sort())).toEqual(new Map([...truth].sort()));
    const ns = r.namespaces.find((n) => n.inode === srvInode)!;
    expect(ns.entries).toBe(EXPECTED);
    expect(ns.uncounted).toBe(0);
    // memory: the entry size from BTF (here relocated into the walk programs), the slab as the kernel reports it
    expect(r.methods.entrySize).toBe('btf');
    expect(r.memory.entryBytes).toBe(nfConnBytes());
    expect(r.memory.expectedBytes).toBe(EXPECTED * nfConnBytes());
    expect(r.memory.slab!.activeObjs).toBeGreaterThanOrEqual(EXPECTED);
    expect(r.memory.slab!.activeObjs).toBeLessThanOrEqual(slabActive() + 1000);
    // per port (summed over states) equals conntrack -L's per-port count
    const port5001 = byPort(ns.groups).find((p) => p.port === 5001)!;
    expect(port5001.entries).toBe(Number(lab.exec(lab.srv, ['bash', '-o', 'pipefail', '-c', 'conntrack -L -p udp --dport 5001 2>/dev/null | wc -l']).trim()));
    // flood sources: 198.19.0.0 carries the first 60,000 flows of each IPv4 flood
    expect(ns.topSources[0]).toEqual({ family: 'ipv4', addr: '198.19.0.0', entries: 60_000 + 25_000 + 8_000 });
    const toSrv4 = 120_000 + 25_000 + 8_000 + MANY_SOURCES.sources * MANY_SOURCES.perSource + TCP_HELD + UDP_ANSWERED;
    expect(ns.topDestinations[0]).toEqual({ family: 'ipv4', addr: lab.srvAddr4, entries: toSrv4 });
    expectAddressesMatch(r, srvInode, conntrackAddresses(lab));
  });

  it('as on kernels before 6.2 (no conntrack kfuncs, no bpf_rdonly_cast): the table is found from traffic (live or a datagram in a private namespace), read with bpf_probe_read_kernel, and counted the same; --walk-threads 1 walks on one', () => {
    const r = census(['--netns', lab.srv, '--walk-threads', '1'], { CTOP_TEST_LOCATE: 'capture', CTOP_TEST_READS: 'probe-read' });
    expect(r.buckets.threads).toBe(1);
    expect(r.methods.occupancy).toBe('bpf-hash-walk');
    expect(['live-entry', 'private-entry']).toContain(r.buckets.locatedBy);
    // the early start loaded the (probe-read) programs but made no entry of its own (CTOP_TEST_LOCATE=capture)
    expect(r.buckets.phasesMs?.startWaitMs).toBeGreaterThanOrEqual(0);
    expect(r.buckets.reads).toBe('probe-read');
    expect(new Map([...censusGroups(r, srvInode)].sort())).toEqual(new Map([...truth].sort()));
    expectAddressesMatch(r, srvInode, conntrackAddresses(lab));
    // the same walker on every CPU
    const two = census(['--netns', lab.srv], { CTOP_TEST_READS: 'probe-read' });
    expect(two.buckets.reads).toBe('probe-read');
    expect(new Map([...censusGroups(two, srvInode)].sort())).toEqual(new Map([...truth].sort()));
    expectAddressesMatch(two, srvInode, conntrackAddresses(lab));
  });

  it('a chain walked again alone (as one that moved during the walk is) counts the same, by both reads', () => {
    for (const reads of ['direct', 'probe-read']) {
      const r = census(['--netns', lab.srv], { CTOP_TEST_REWALK: 'all', CTOP_TEST_READS: reads === 'probe-read' ? 'probe-read' : '' });
      expect(r.buckets.reads).toBe(reads);
      // every bucket took the second walk, and every one ended in its own marker there
      expect(r.buckets.rewalkedBuckets).toBe(r.buckets.buckets);
      expect(r.buckets.inconsistentBuckets).toBe(0);
      expect(new Map([...censusGroups(r, srvInode)].sort())).toEqual(new Map([...truth].sort()));
      expectAddressesMatch(r, srvInode, conntrackAddresses(lab));
    }
  });

  it('the ctnetlink fallback, forced, counts the same and says it is the fallback', () => {
    const t0 = Date.now();
    const r = census(['--netns', lab.srv, '--occupancy', 'ctnetlink']);
    expectRemainingMatches(r, srvInode, conntrackTcpRemaining(lab), Math.ceil((Date.now() - t0) / 1000) + 1);
    expect(r.methods.occupancy).toBe('ctnetlink-dump');
    expect(r.methods.occupancyFallbackReason).toMatch(/forced/);
    expect(r.memory.entryBytes).toBe(nfConnBytes());
    expect(new Map([...censusGroups(r, srvInode)].sort())).toEqual(new Map([...truth].sort()));
    const text = runCli(['census', '--netns', lab.srv, '--occupancy', 'ctnetlink', '--rate-window', '0s']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/occupancy \[ctnetlink dump \(libnetfilter_conntrack\), counted in C\] \(in-kernel count not used: forced/);
  });

  it('the measured histogram covers every bucket, and its nodes are two per entry in the whole table', () => {
    // the hash is one table for all namespaces: compare with every namespace's count, taken
    // before and after the walk; retry if something outside the lab changed the table meanwhile
    let r: CensusReport | undefined;
    for (let i = 0; i < 3; i++) {
      r = census([], { CTOP_TEST_LOCATE: 'entry' });
      if (r.hashEntries.before === r.hashEntries.after) break;
    }
    const b = r!.buckets;
    expect(b.method).toBe('bpf-hash-walk');
    expect(r!.hashEntries.before).toBe(r!.hashEntries.after);
    expect(b.inconsistentBuckets).toBe(0);
    expect(b.buckets).toBe(kernelBuckets());
    expect(b.histogram.reduce((a, h) => a + h.buckets, 0)).toBe(kernelBuckets());
    expect(b.histogram.at(-1)!.orMore).toBe(false);
    const nodes = b.histogram.reduce((a, h) => a + h.k * h.buckets, 0);
    expect(nodes).toBe(b.nodes);
    expect(nodes).toBe(2 * r!.hashEntries.after);
    expect(r!.hashEntries.after).toBeGreaterThanOrEqual(EXPECTED);
    expect(b.longestChain).toBe(b.histogram.filter((h) => h.buckets > 0).at(-1)!.k);
    expect(b.headroom).toBe(50 - b.longestChain);
    // bounded work per BPF run: as many buckets as hold about 4,096 nodes at this load
    expect(b.bucketsPerRun).toBe(bucketsPerRun(2 * r!.hashEntries.before, kernelBuckets()));
    expect(b.bucketsPerRun).toBeLessThan(16_384);
    expect(b.runs).toBe(Math.ceil(kernelBuckets() / b.bucketsPerRun!));
  });

  it('finds the table again after a resize (nf_conntrack_buckets written), and measures the new one', () => {
    const path = '/proc/sys/net/netfilter/nf_conntrack_buckets';
    const old = readFileSync(path, 'utf8').trim();
    const restore = () => writeFileSync(path, old);
    process.once('exit', restore); // the size is global: put it back even if this process dies
    try {
      const half = Number(old) / 2;
      writeFileSync(path, String(half));
      let r: CensusReport | undefined;
      for (let i = 0; i < 3; i++) {
        r = census([], { CTOP_TEST_LOCATE: 'entry' });
        if (r.hashEntries.before === r.hashEntries.after) break;
      }
      expect(r!.buckets.method).toBe('bpf-hash-walk');
      expect(r!.buckets.buckets).toBe(half);
      expect(r!.buckets.histogram.reduce((a, h) => a + h.buckets, 0)).toBe(half);
      expect(r!.buckets.nodes).toBe(2 * r!.hashEntries.after);
      expect(r!.buckets.inconsistentBuckets).toBe(0);
    } finally {
      restore();
      process.removeListener('exit', restore);
    }
    expect(kernelBuckets()).toBe(Number(old));
  });

  it('the model, forced, is labelled as a model in JSON and text', () => {
    const r = census(['--netns', lab.srv, '--chains', 'model']);
    expect(r.methods.chains).toBe('model');
    expect(r.buckets.method).toBe('model');
    expect(r.buckets.fallbackReason).toMatch(/forced/);
    expect(r.buckets.nodes).toBe(2 * r.hashEntries.after);
    const text = runCli(['census', '--netns', lab.srv, '--chains', 'model', '--rate-window', '0s']);
    expect(text.stdout).toMatch(/hash buckets \[MODEL: uniform hash, Poisson \(not measured\)\] \(walk not used: forced with --chains model\)/);
    expect(text.stdout).toMatch(/occupancy \[counted in the kernel during the BPF hash walk\]/);
  });

  it('snapshot --census carries the same census in its JSON', () => {
    const r = runCli(['snapshot', '--json', '--duration', '1s', '--census', '--netns', lab.srv, '--top', '0'], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const snap = JSON.parse(r.stdout) as { schema: string; census?: CensusReport };
    expect(snap.schema).toBe('ctop.snapshot/v1');
    expect(snap.census?.schema).toBe('ctop.census/v1');
    expect(snap.census?.methods.occupancy).toBe('bpf-hash-walk');
    expect(new Map([...censusGroups(snap.census!, srvInode)].sort())).toEqual(new Map([...truth].sort()));
  });

  it('bounded address tables: every entry is in an address row or in the overflow count, by both methods', () => {
    for (const extra of [[], ['--occupancy', 'ctnetlink']]) {
      const r = census(['--netns', lab.srv, '--max-addrs', '4', ...extra]);
      const ns = r.namespaces.find((n) => n.inode === srvInode)!;
      const sum = (rows: { entries: number }[]) => rows.reduce((a, x) => a + x.entries, 0);
      expect(sum(ns.topSources) + ns.sourceOverflow).toBe(EXPECTED);
      expect(sum(ns.topDestinations) + ns.destinationOverflow).toBe(EXPECTED);
      // the lab has five distinct sources: four slots cannot hold them all
      expect(ns.sourceOverflow).toBeGreaterThan(0);
      expect(ns.entries).toBe(EXPECTED);
    }
  });

  it('one loaded walker serves census after census, on one thread or several: each counts the table as it is then', () => {
    // per port: entries, assured, unreplied, as conntrack -L lists them
    const perPort = (groups: Iterable<[string, { entries: number; assured: number; unreplied: number }]>) => {
      const out = new Map<string, number[]>();
      for (const [k, g] of groups) {
        const [fam, proto, port] = k.split(' ');
        const key = `${fam} ${proto} ${port}`;
        const t = out.get(key) ?? [0, 0, 0];
        out.set(key, [t[0]! + g.entries, t[1]! + g.assured, t[2]! + g.unreplied]);
      }
      return new Map([...out].sort());
    };
    const fromCensus = (c: CensusCounts) =>
      perPort(c.groups.map((g) => [`${g.family === 2 ? 'ipv4' : 'ipv6'} ${g.l4proto === 6 ? 'tcp' : 'udp'} ${g.port}`, g] as [string, CensusCountsGroup]));
    const walker = new TableWalker({ maxAddrs: 65_536, locate: 'entry' });
    try {
      const take = (threads: number) => {
        const w = walker.walk({ census: true, addrs: true, top: 0, maxAddrs: 65_536, hashEntries: EXPECTED, threads });
        expect(w.result, w.reason).not.toBeNull();
        return { result: w.result!, census: w.census!.find((x) => x.netns === srvInode)!.census };
      };
      const one = take(1);
      const two = take(2);
      const again = take(0);
      expect(one.result.threads).toBe(1);
      expect(two.result.threads).toBe(2);
      for (const x of [one, two, again]) {
        // a census that added to the last one's counts would show twice the entries
        expect(x.census.entries).toBe(EXPECTED);
        expect(fromCensus(x.census)).toEqual(perPort(truth));
        expect(x.census.groups).toEqual(one.census.groups);
        expect(x.census.srcs).toEqual(one.census.srcs);
        expect(x.census.dsts).toEqual(one.census.dsts);
        expect([x.census.srcOverflow, x.census.dstOverflow, x.census.groupOverflow]).toEqual([0, 0, 0]);
        // TCP entries per state in the seconds-left histogram (slots move as entries age; totals do not)
        const tcpPerState = (c: CensusCounts) => c.tcpRemaining!.map((r) => [r.state, r.slots.reduce((a, n) => a + n, 0)]);
        expect(tcpPerState(x.census)).toEqual(tcpPerState(one.census));
      }
      // the table shrinks between two censuses of the same walker
      lab.exec(lab.srv, ['bash', '-c', 'conntrack -D -p udp --orig-port-dst 5003 >/dev/null 2>&1'], { timeoutMs: 60_000 });
      const after = take(0);
      expect(after.census.entries).toBe(EXPECTED - 25_000);
      expect(fromCensus(after.census)).toEqual(perPort(conntrackGroups(lab)));
      expect(fromCensus(after.census).has('ipv4 udp 5003')).toBe(false);
    } finally {
      walker.close();
    }
  });

  it('leaves no walk program and no private namespace behind', () => {
    expect(leftovers()).toEqual([]);
  });

  it('bad input: one line and a hint, exit code 2, and nothing the early start loaded is left', async () => {
    // each of these starts loading the walk programs before commander rejects the option
    for (const args of [['--chains', 'guess'], ['--max-addrs', '0'], ['--netns', 'ctop-t-no-such-ns'], ['--rate-window', 'soon'], ['--walk-threads', '17']]) {
      const r = runCli(['census', ...args]);
      expect(r.code).toBe(2);
      expectOneLineError(r.stderr);
    }
    expect(await waitNoCtopPrograms()).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
