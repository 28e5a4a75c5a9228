#!/usr/bin/env node
// What ctop costs the kernel, side by side in one run: new-flow throughput
// with no observer, with the floor (empty programs at ctop's hooks:
// bpf/floor.bpf.c), with ctop attached (`ctop snapshot`: programs counting,
// maps read at the window's ends), with ctop reading everything once a second
// (`ctop serve`, the always-on exporter) and with `conntrack -E` listening;
// established-flow throughput likewise; whether every insert was
// counted; ctop's own CPU (idle and under a flood) and its map memory.
// Then, with kernel.bpf_stats_enabled=1 (restored afterwards), the kernel's
// own run time of ctop's programs and of the floor's, per new flow and per
// established packet.
//
//   sudo node bench/conntrack-cost.mjs [--rounds 5] [--flows 600000] [--packets 1000000] [--pin 1]
//                                      [--stats-rounds 3] [--cases loopback,veth]
//
// Two cases (--cases picks them; both by default), each reported on its own
// beside the other:
// - loopback: each run gets a fresh network namespace (its own conntrack
//   table, so runs do not fill each other's) with conntrack enabled by one nft
//   rule, and floods its loopback with tools/flood.c (tools/bin/flood). A
//   loopback flow passes both of ctop's hooks (POST_ROUTING on the way out,
//   where it is confirmed, then LOCAL_IN), so ctop's program runs twice per
//   new flow.
// - veth: what a server sees. New flows come from a client namespace (no
//   conntrack, no ctop) over a veth pair into a server namespace where
//   conntrack is on and ctop (or the floor) is attached: each new flow passes
//   only the server's LOCAL_IN, so the program runs once per new flow. New
//   flows only (the established path is the same in both cases).
// Conditions alternate in a rotating order within each round; the report gives
// medians and ratios. Traffic stays inside the namespaces (198.18.0.0/24,
// 198.19.0.0/16 sources).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableBpfStats, progDelta, progStats } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood'); // built by `npm run build:tools`
const CTOP = join(ROOT, 'bin', 'ctop');
const SELFTEST = join(ROOT, 'tools', 'bin', 'ctop-selftest'); // `hold --floor`

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUNDS = arg('--rounds', 5);
const FLOWS = arg('--flows', 600_000);
// Runs of a few seconds need more entries than the default limit allows:
// raised for the benchmark, restored afterwards (also on failure or Ctrl-C).
const BENCH_CT_MAX = Math.max(FLOWS * 2, 262_144);
const CT_MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';
const PACKETS = arg('--packets', 1_000_000);
const IDLE_MS = arg('--idle-ms', 10_000);
// --pin CPU (default 1; -1: not pinned): run the flood (its sender and
// receiver threads) on one CPU with taskset. Unpinned, rates on this 2-core VM
// are bimodal (by where the scheduler puts the two threads, e.g. 120-150k or
// 180k+ new flows/s), which swamps effects of a few percent; ctop and
// conntrack -E then have the other CPU.
const PIN = arg('--pin', 1);
const STATS_ROUNDS = arg('--stats-rounds', 3);
const CASES = (() => {
  const i = process.argv.indexOf('--cases');
  const v = (i > 0 ? process.argv[i + 1] ?? '' : 'loopback,veth').split(',');
  if (!v.length || v.some((c) => c !== 'loopback' && c !== 'veth')) {
    console.error('bench: --cases takes loopback, veth or loopback,veth');
    process.exit(2);
  }
  return v;
})();

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let nsCounter = 0;
function makeNs() {
  const ns = `ctop-b-${process.pid}-${nsCounter++}`;
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
  // one rule that needs conntrack; it never changes a verdict
  sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  return ns;
}

/** Every condition waits the same time between creating its namespace and
 * flooding: the kernel finishes namespace set-up work in the background, and
 * a condition that floods at once would pay for it. */
const SETTLE_MS = 1500;
async function settle(since) {
  const left = SETTLE_MS - (performance.now() - since);
  if (left > 0) await sleep(left);
}
const delNs = (ns) => {
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    /* already gone */
  }
};
const nsInode = (ns) => Number(sh('stat', ['-L', '-c', '%i', `/run/netns/${ns}`]).trim());
const pinArgs = () => (PIN >= 0 ? ['taskset', '-c', String(PIN)] : []);

function flood(ns, mode, count) {
  const out = sh('ip', ['netns', 'exec', ns, ...pinArgs(), FLOOD, mode, '--dst', '198.18.0.2', '--port', '9', '--count', String(count), '--max-ms', '60000'], { timeout: 90_000 });
  return JSON.parse(out.trim().split('\n').pop());
}

/**
 * The veth case's lab: a server namespace (198.18.0.2 on veth1, conntrack on
 * through one nft rule, the one ctop or the floor watches) and a client
 * namespace (198.18.0.1 on veth0, nothing of conntrack or ctop: no rule
 * there, so the kernel registers no conntrack hooks in it).
 */
function makeVethLab() {
  const id = `${process.pid}-${nsCounter++}`;
  const srv = `ctop-bs-${id}`;
  const cli = `ctop-bc-${id}`;
  sh('ip', ['netns', 'add', srv]);
  try {
    sh('ip', ['netns', 'add', cli]);
    for (const ns of [srv, cli]) sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', cli, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', srv]);
    sh('ip', ['-n', cli, 'addr', 'add', '198.18.0.1/24', 'dev', 'veth0']);
    sh('ip', ['-n', srv, 'addr', 'add', '198.18.0.2/24', 'dev', 'veth1']);
    sh('ip', ['-n', cli, 'link', 'set', 'veth0', 'up']);
    sh('ip', ['-n', srv, 'link', 'set', 'veth1', 'up']);
    // The flood's sources (198.19.0.0/16) route back over the veth, so a
    // reverse-path filter would accept them.
    sh('ip', ['-n', srv, 'route', 'add', '198.19.0.0/16', 'via', '198.18.0.1']);
    // A permanent neighbour: otherwise the first packets wait in (and may
    // overflow) the ARP queue while the address resolves.
    const mac = JSON.parse(sh('ip', ['-j', '-n', srv, 'link', 'show', 'veth1']))[0].address;
    sh('ip', ['-n', cli, 'neigh', 'replace', '198.18.0.2', 'lladdr', mac, 'dev', 'veth0', 'nud', 'permanent']);
    sh('ip', ['netns', 'exec', srv, 'nft', 'table inet bench { chain in { type filter hook input priority 0; ct state new counter; }; }']);
  } catch (e) {
    delNs(cli);
    delNs(srv);
    throw e;
  }
  return { srv, cli };
}

/** New flows from the client namespace to the server's receiver (`flood
 * sink`), both pinned like the loopback flood; returns the sender's report
 * with what the receiver read. */
async function vethFlood(lab, count) {
  const sink = spawn('ip', ['netns', 'exec', lab.srv, ...pinArgs(), FLOOD, 'sink', '--dst', '198.18.0.2', '--port', '9', '--max-ms', '120000'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  sink.stdout.on('data', (d) => (out += d));
  sink.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => sink.on('close', (code) => r(code)));
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`flood sink not ready: ${err}`)), 10_000);
      sink.stdout.on('data', () => {
        if (out.includes('"ready"')) {
          clearTimeout(t);
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`flood sink exited ${code}: ${err}`)));
    });
    const res = sh('ip', ['netns', 'exec', lab.cli, ...pinArgs(), FLOOD, 'new', '--sink', '0', '--dst', '198.18.0.2', '--port', '9', '--count', String(count), '--max-ms', '60000'], { timeout: 90_000 });
    const f = JSON.parse(res.trim().split('\n').pop());
    await sleep(200); // the receiver drains what is queued
    sink.stdin.end();
    if ((await exited) !== 0) throw new Error(`flood sink failed: ${err}`);
    return { ...f, received: JSON.parse(out.trim().split('\n').pop()).received };
  } finally {
    if (sink.exitCode === null) sink.kill('SIGKILL');
  }
}

/**
 * A fresh lab per run: `watchNs` is the namespace ctop or the floor attaches
 * to, `flood(mode, count)` sends there.
 */
function makeLab(kase) {
  if (kase === 'veth') {
    const lab = makeVethLab();
    return { watchNs: lab.srv, del: () => (delNs(lab.cli), delNs(lab.srv)), flood: (mode, count) => vethFlood(lab, count) };
  }
  const ns = makeNs();
  return { watchNs: ns, del: () => delNs(ns), flood: async (mode, count) => flood(ns, mode, count) };
}

/**
 * CPU time of a process, all its threads, in ns: the first field of each
 * thread's /proc/PID/task/TID/schedstat (time on a CPU, nanosecond
 * resolution). The tick-based utime+stime of /proc/PID/stat move in 10 ms
 * steps, too coarse for a phase of a second.
 */
function cpuNs(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* thread ended meanwhile */
    }
  }
  return ns;
}

/**
 * Starts ctop on the namespace; resolves when it is attached. `snapshot`
 * reads the maps twice, at the window's ends; `serve` reads every map and
 * statistic once a second, as the always-on exporter does: the 1 Hz cost.
 */
function startCtop(ns, mode = 'snapshot') {
  // --netns: ctop watches the benchmark's namespace only, as the floor does
  const args =
    mode === 'serve'
      ? ['serve', '--netns', ns, '--listen', `127.0.0.1:${20000 + Math.floor(Math.random() * 40000)}`, '--every', '1s']
      : ['snapshot', '--netns', ns, '--json', '--top', '5', '--duration', '10m'];
  const p = spawn(process.execPath, [CTOP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => p.on('close', (code) => r({ code, out, err })));
  const ready = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`ctop not ready: ${err}`)), 30_000);
    p.stderr.on('data', (d) => {
      err += d;
      if (/sampling for|serving metrics/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return { p, ready, exited, ns, mode };
}

async function stopCtop(c) {
  c.p.kill('SIGINT'); // snapshot: ends the window and prints the report; serve: exits
  const r = await c.exited;
  if (r.code !== (c.mode === 'serve' ? 130 : 0)) throw new Error(`ctop exited ${r.code}: ${r.err}`);
  return c.mode === 'serve' ? null : JSON.parse(r.out);
}

/** The floor: empty programs linked at ctop's hooks in the namespace (and
 * on kfree_skb), held until stop(); stop() returns their run statistics. */
async function startFloor(ns) {
  const p = spawn('ip', ['netns', 'exec', ns, SELFTEST, 'hold', '--tier', 'netfilter', '--floor'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => p.on('close', (code) => r(code)));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`floor not attached: ${err}`)), 15_000);
    p.stdout.on('data', () => {
      if (out.includes('\n')) {
        clearTimeout(t);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`floor exited ${code}: ${err}`)));
  });
  return {
    async stop() {
      p.stdin.end();
      const code = await exited;
      if (code !== 0) throw new Error(`floor exited ${code}: ${err}`);
      return JSON.parse(out.trim().split('\n').pop()).programs;
    },
  };
}

function startEvents(ns) {
  // what operators use today; 64 MiB socket buffer as in KERNEL-NOTES
  const p = spawn('ip', ['netns', 'exec', ns, 'conntrack', '-E', '-e', 'NEW', '-b', String(64 << 20)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => p.on('close', () => r()));
  return { p, exited, get err() { return err; } };
}

/** Memory of the maps the ctop process holds: the map ids in its fdinfo
 * (a BPF map fd's fdinfo has a map_id line), summed from `bpftool map show`.
 * By holder, not by name: names are short and another tool may share one. */
function ctopMapBytes(pid) {
  const ids = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^map_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* fd closed meanwhile */
    }
  }
  const maps = JSON.parse(sh('bpftool', ['-j', 'map', 'show']));
  return maps.filter((m) => ids.has(m.id)).reduce((s, m) => s + (m.bytes_memlock ?? 0), 0);
}

/** One new-flow run of `cond` in a fresh lab of case `kase`. */
async function newFlowRun(cond, kase = 'loopback') {
  const t0 = performance.now();
  const lab = makeLab(kase);
  const ns = lab.watchNs;
  try {
    if (cond === 'none') {
      await settle(t0);
      return { pps: (await lab.flood('new', FLOWS)).pps };
    }
    if (cond === 'floor') {
      const fl = await startFloor(ns);
      await settle(t0);
      const f = await lab.flood('new', FLOWS);
      await fl.stop();
      return { pps: f.pps };
    }
    if (cond === 'ctop' || cond === 'serve') {
      const c = startCtop(ns, cond === 'serve' ? 'serve' : 'snapshot');
      await c.ready;
      await settle(t0);
      const mapBytes = cond === 'ctop' ? ctopMapBytes(c.p.pid) : 0;
      const cpu0 = cpuNs(c.p.pid);
      const start = performance.now();
      const f = await lab.flood('new', FLOWS);
      if (cond === 'serve') {
        // the same window as idleCpu(), starting with the flood: the
        // process's periodic work (reads at 1 Hz, namespace rescans) falls
        // into both alike, and the difference is what the flood adds
        await sleep(Math.max(0, IDLE_MS - (performance.now() - start)));
        const cpuMs = (cpuNs(c.p.pid) - cpu0) / 1e6;
        const wallMs = performance.now() - start;
        await stopCtop(c);
        return { pps: f.pps, cpuMs, wallMs, cpuPct: (100 * cpuMs) / wallMs };
      }
      const snap = await stopCtop(c);
      const inode = nsInode(ns);
      const port = snap.ports.find((p) => p.netns === inode && p.port === 9);
      const kernelEntries = Number(sh('ip', ['netns', 'exec', ns, 'conntrack', '-C']).trim());
      return { pps: f.pps, counted: port?.inserts ?? 0, sent: f.sent, received: f.received, kernelEntries, mapBytes };
    }
    const ev = startEvents(ns);
    await sleep(300); // let it subscribe
    await settle(t0);
    const f = await lab.flood('new', FLOWS);
    await sleep(1000); // let it drain
    ev.p.kill('SIGINT');
    await ev.exited;
    // its own count: "conntrack v1.4.7 (conntrack-tools): 123 flow events have been shown."
    const shown = Number(/(\d+) flow events have been shown/.exec(ev.err)?.[1] ?? NaN);
    return { pps: f.pps, events: shown, sent: f.sent, lost: /ENOBUFS|No buffer space/.test(ev.err) };
  } finally {
    lab.del();
  }
}

async function establishedRun(cond) {
  const t0 = performance.now();
  const ns = makeNs();
  try {
    if (cond === 'none') {
      await settle(t0);
      return { pps: flood(ns, 'est', PACKETS).pps };
    }
    if (cond === 'floor') {
      const fl = await startFloor(ns);
      await settle(t0);
      const f = flood(ns, 'est', PACKETS);
      await fl.stop();
      return { pps: f.pps };
    }
    const c = startCtop(ns, cond === 'serve' ? 'serve' : 'snapshot');
    await c.ready;
    await settle(t0);
    const f = flood(ns, 'est', PACKETS);
    await stopCtop(c);
    return { pps: f.pps };
  } finally {
    delNs(ns);
  }
}

/**
 * The kernel's own clock on the programs (kernel.bpf_stats_enabled): ns of
 * program time per new flow and per established packet, ctop's programs and
 * the floor's, in fresh namespaces. `mode` new: FLOWS new flows; est: PACKETS
 * packets of one flow.
 */
async function programTime(cond, mode, kase = 'loopback') {
  const t0 = performance.now();
  const lab = makeLab(kase);
  const ns = lab.watchNs;
  const count = mode === 'new' ? FLOWS : PACKETS;
  try {
    let before = {};
    let after;
    let stopFloor;
    let c;
    if (cond === 'floor') {
      stopFloor = (await startFloor(ns)).stop;
    } else {
      c = startCtop(ns);
      await c.ready;
      before = progStats(c.p.pid);
    }
    await settle(t0);
    const f = await lab.flood(mode, count);
    if (c) {
      after = progStats(c.p.pid);
      await stopCtop(c);
    } else {
      after = Object.fromEntries((await stopFloor()).map((x) => [x.name, { runs: x.runs, ns: x.ns }]));
    }
    const d = progDelta(before, after);
    return { sent: f.sent, runsPerUnit: d.runs / f.sent, nsPerUnit: d.ns / f.sent, pps: f.pps };
  } finally {
    lab.del();
  }
}

/** ctop serve idle on a namespace with no traffic: its CPU over IDLE_MS,
 * after the same settling time as a flood run. */
async function idleCpu() {
  const since = performance.now();
  const ns = makeNs();
  try {
    const c = startCtop(ns, 'serve');
    await c.ready;
    await settle(since);
    const t0 = cpuNs(c.p.pid);
    const w0 = performance.now();
    await sleep(IDLE_MS);
    const cpuMs = (cpuNs(c.p.pid) - t0) / 1e6;
    const wallMs = performance.now() - w0;
    await stopCtop(c);
    return { cpuMs, wallMs, cpuPct: (100 * cpuMs) / wallMs };
  } finally {
    delNs(ns);
  }
}

const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);

async function main() {
  if (process.getuid() !== 0) {
    console.error('bench: needs root (network namespaces, BPF)');
    process.exit(2);
  }
  const oldMax = readFileSync(CT_MAX_PATH, 'utf8').trim();
  const restore = () => writeFileSync(CT_MAX_PATH, oldMax);
  // kernel.bpf_stats_enabled is on only for the program-time phase; this
  // puts it back if a signal ends the run during that phase
  let restoreStats = () => {};
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    process.once(sig, () => {
      restore();
      restoreStats();
      process.exit(code);
    });
  }
  writeFileSync(CT_MAX_PATH, String(BENCH_CT_MAX));
  try {
    await runAll((r) => (restoreStats = r));
  } finally {
    restore();
    restoreStats();
  }
}

/** Median, lowest and highest of the per-round ratios cond/none (rounds
 * pair up: each round ran every condition once, in rotating order). */
function ratioSpread(runs, cond) {
  const rs = runs[cond].map((x, i) => x.pps / runs.none[i].pps);
  return { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) };
}

const m = (runs, k = 'pps') => median(runs.map((x) => x[k]));
const spread = (runs, k) => ({ median: m(runs, k), min: Math.min(...runs.map((x) => x[k])), max: Math.max(...runs.map((x) => x[k])) });

/** The program-time figures of one case and mode: ns and runs per unit (new
 * flow or established packet), ctop's and the floor's. */
function programFigures(t) {
  return {
    ns: { ctop: spread(t.ctop, 'nsPerUnit'), floor: spread(t.floor, 'nsPerUnit') },
    // what ctop's programs do beyond the floor's dispatch and clock reads
    aboveFloorNs: m(t.ctop, 'nsPerUnit') - m(t.floor, 'nsPerUnit'),
    runs: { ctop: m(t.ctop, 'runsPerUnit'), floor: m(t.floor, 'runsPerUnit') },
  };
}

function completeness(ctopRuns) {
  return {
    // ctop's count of port 9's inserts, the kernel's table and the sender agree
    ctopCountedEqualsSent: ctopRuns.every((x) => x.counted === x.sent && x.kernelEntries === x.sent),
    ctopRuns: ctopRuns.map((x) => ({ sent: x.sent, counted: x.counted, kernelEntries: x.kernelEntries, received: x.received })),
  };
}

async function runAll(onStats) {
  const loop = CASES.includes('loopback');
  const veth = CASES.includes('veth');
  const newRuns = { none: [], floor: [], ctop: [], serve: [], events: [] };
  const estRuns = { none: [], floor: [], ctop: [], serve: [] };
  const vethRuns = { none: [], floor: [], ctop: [] };
  for (let r = 0; r < ROUNDS; r++) {
    if (loop) {
      for (const cond of rotate(['none', 'floor', 'ctop', 'serve', 'events'], r)) newRuns[cond].push(await newFlowRun(cond));
      for (const cond of rotate(['none', 'floor', 'ctop', 'serve'], r)) estRuns[cond].push(await establishedRun(cond));
    }
    if (veth) for (const cond of rotate(['none', 'floor', 'ctop'], r)) vethRuns[cond].push(await newFlowRun(cond, 'veth'));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
  const idle = loop && ROUNDS > 0 ? await idleCpu() : null;
  const time = { new: { floor: [], ctop: [] }, est: { floor: [], ctop: [] }, veth: { floor: [], ctop: [] } };
  const restoreStats = enableBpfStats();
  onStats(restoreStats);
  try {
    for (let r = 0; r < STATS_ROUNDS; r++) {
      if (loop) {
        for (const mode of ['new', 'est']) {
          for (const cond of rotate(['floor', 'ctop'], r)) time[mode][cond].push(await programTime(cond, mode));
        }
      }
      if (veth) for (const cond of rotate(['floor', 'ctop'], r)) time.veth[cond].push(await programTime(cond, 'new', 'veth'));
      process.stderr.write(`program-time round ${r + 1}/${STATS_ROUNDS} done\n`);
    }
  } finally {
    restoreStats();
  }
  const res = { rounds: ROUNDS, statsRounds: STATS_ROUNDS, pinnedCpu: PIN >= 0 ? PIN : null, flowsPerRun: FLOWS, packetsPerRun: PACKETS };
  if (loop) {
    res.loopback = { programNs: STATS_ROUNDS ? { perNewFlow: programFigures(time.new), perEstablishedPacket: programFigures(time.est) } : null };
    if (ROUNDS) {
      Object.assign(res.loopback, {
        newFlowPps: { none: m(newRuns.none), floor: m(newRuns.floor), ctop: m(newRuns.ctop), ctop1Hz: m(newRuns.serve), conntrackE: m(newRuns.events) },
        establishedPps: { none: m(estRuns.none), floor: m(estRuns.floor), ctop: m(estRuns.ctop), ctop1Hz: m(estRuns.serve) },
        // per-round ratios to none: median and range
        newFlowRatio: { floor: ratioSpread(newRuns, 'floor'), ctop: ratioSpread(newRuns, 'ctop'), ctop1Hz: ratioSpread(newRuns, 'serve'), conntrackE: ratioSpread(newRuns, 'events') },
        establishedRatio: { floor: ratioSpread(estRuns, 'floor'), ctop: ratioSpread(estRuns, 'ctop'), ctop1Hz: ratioSpread(estRuns, 'serve') },
        completeness: {
          ...completeness(newRuns.ctop),
          conntrackEEventsRatio: median(newRuns.events.map((x) => x.events / x.sent)),
          conntrackERuns: newRuns.events.map((x) => ({ sent: x.sent, events: x.events })),
        },
        // the ctop serve process's own CPU (all threads, schedstat) over
        // IDLE_MS: idle, and from the start of each flood (ms of CPU and %
        // of one CPU over the window)
        ctopCpu: {
          idle,
          flood1Hz: { cpuMs: spread(newRuns.serve, 'cpuMs'), cpuPct: spread(newRuns.serve, 'cpuPct') },
        },
        mapBytes: m(newRuns.ctop, 'mapBytes'),
      });
    }
  }
  if (veth) {
    res.veth = { programNs: STATS_ROUNDS ? { perNewFlow: programFigures(time.veth) } : null };
    if (ROUNDS) {
      Object.assign(res.veth, {
        newFlowPps: { none: m(vethRuns.none), floor: m(vethRuns.floor), ctop: m(vethRuns.ctop) },
        newFlowRatio: { floor: ratioSpread(vethRuns, 'floor'), ctop: ratioSpread(vethRuns, 'ctop') },
        completeness: completeness(vethRuns.ctop),
      });
    }
  }
  console.log(JSON.stringify(res, null, 2));
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
