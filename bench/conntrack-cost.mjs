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
//   sudo node bench/conntrack-cost.mjs [--rounds 5] [--flows 600000] [--packets 1000000] [--pin 1] [--stats-rounds 3]
//
// Each run gets a fresh network namespace (its own conntrack table, so runs do
// not fill each other's) with conntrack enabled by one nft rule, and floods
// its loopback with tools/flood.c (tools/bin/flood). Conditions alternate in a
// rotating order within each round; the report gives medians and ratios.
// Traffic stays inside the namespace (198.18.0.2, 198.19.0.0/16 sources).
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

function flood(ns, mode, count) {
  const pin = PIN >= 0 ? ['taskset', '-c', String(PIN)] : [];
  const out = sh('ip', ['netns', 'exec', ns, ...pin, FLOOD, mode, '--dst', '198.18.0.2', '--port', '9', '--count', String(count), '--max-ms', '60000'], { timeout: 90_000 });
  return JSON.parse(out.trim().split('\n').pop());
}

function cpuTicks(pid) {
  // /proc/PID/stat fields 14 and 15: utime, stime in clock ticks
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(f[11]), sys: Number(f[12]) };
}
const HZ = Number(sh('getconf', ['CLK_TCK']).trim());

/**
 * Starts ctop on the namespace; resolves when it is attached. `snapshot`
 * reads the maps twice, at the window's ends; `serve` reads every map and
 * statistic once a second, as the always-on exporter does: the 1 Hz cost.
 */
function startCtop(ns, mode = 'snapshot') {
  const args =
    mode === 'serve'
      ? ['serve', '--listen', `127.0.0.1:${20000 + Math.floor(Math.random() * 40000)}`, '--every', '1s']
      : ['snapshot', '--json', '--top', '5', '--duration', '10m'];
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

async function newFlowRun(cond) {
  const t0 = performance.now();
  const ns = makeNs();
  try {
    if (cond === 'none') {
      await settle(t0);
      return { pps: flood(ns, 'new', FLOWS).pps };
    }
    if (cond === 'floor') {
      const fl = await startFloor(ns);
      await settle(t0);
      const f = flood(ns, 'new', FLOWS);
      await fl.stop();
      return { pps: f.pps };
    }
    if (cond === 'ctop') {
      const c = startCtop(ns);
      await c.ready;
      await settle(t0);
      const mapBytes = ctopMapBytes(c.p.pid);
      const cpu0 = cpuTicks(c.p.pid);
      const start = performance.now();
      const f = flood(ns, 'new', FLOWS);
      await sleep(1100); // one more 1 Hz tick sees the end of the flood
      const cpu1 = cpuTicks(c.p.pid);
      const wallS = (performance.now() - start) / 1000;
      const snap = await stopCtop(c);
      const inode = nsInode(ns);
      const port = snap.ports.find((p) => p.netns === inode && p.port === 9);
      const kernelEntries = Number(sh('ip', ['netns', 'exec', ns, 'conntrack', '-C']).trim());
      return {
        pps: f.pps,
        counted: port?.inserts ?? 0,
        sent: f.sent,
        kernelEntries,
        cpuUserPct: (100 * (cpu1.user - cpu0.user)) / HZ / wallS,
        cpuSysPct: (100 * (cpu1.sys - cpu0.sys)) / HZ / wallS,
        mapBytes,
      };
    }
    if (cond === 'serve') {
      const c = startCtop(ns, 'serve');
      await c.ready;
      await settle(t0);
      const cpu0 = cpuTicks(c.p.pid);
      const start = performance.now();
      const f = flood(ns, 'new', FLOWS);
      const cpu1 = cpuTicks(c.p.pid);
      const wallS = (performance.now() - start) / 1000;
      await stopCtop(c);
      return { pps: f.pps, cpuUserPct: (100 * (cpu1.user - cpu0.user)) / HZ / wallS, cpuSysPct: (100 * (cpu1.sys - cpu0.sys)) / HZ / wallS };
    }
    const ev = startEvents(ns);
    await sleep(300); // let it subscribe
    await settle(t0);
    const f = flood(ns, 'new', FLOWS);
    await sleep(1000); // let it drain
    ev.p.kill('SIGINT');
    await ev.exited;
    // its own count: "conntrack v1.4.7 (conntrack-tools): 123 flow events have been shown."
    const shown = Number(/(\d+) flow events have been shown/.exec(ev.err)?.[1] ?? NaN);
    return { pps: f.pps, events: shown, sent: f.sent, lost: /ENOBUFS|No buffer space/.test(ev.err) };
  } finally {
    delNs(ns);
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
async function programTime(cond, mode) {
  const t0 = performance.now();
  const ns = makeNs();
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
    const f = flood(ns, mode, count);
    if (c) {
      after = progStats(c.p.pid);
      await stopCtop(c);
    } else {
      after = Object.fromEntries((await stopFloor()).map((x) => [x.name, { runs: x.runs, ns: x.ns }]));
    }
    const d = progDelta(before, after);
    return { sent: f.sent, runsPerUnit: d.runs / f.sent, nsPerUnit: d.ns / f.sent, pps: f.pps };
  } finally {
    delNs(ns);
  }
}

async function idleCpu() {
  const ns = makeNs();
  try {
    const c = startCtop(ns, 'serve');
    await c.ready;
    const t0 = cpuTicks(c.p.pid);
    await sleep(IDLE_MS);
    const t1 = cpuTicks(c.p.pid);
    await stopCtop(c);
    const s = IDLE_MS / 1000;
    return { userPct: (100 * (t1.user - t0.user)) / HZ / s, sysPct: (100 * (t1.sys - t0.sys)) / HZ / s };
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

async function runAll(onStats) {
  const newRuns = { none: [], floor: [], ctop: [], serve: [], events: [] };
  const estRuns = { none: [], floor: [], ctop: [], serve: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const cond of rotate(['none', 'floor', 'ctop', 'serve', 'events'], r)) newRuns[cond].push(await newFlowRun(cond));
    for (const cond of rotate(['none', 'floor', 'ctop', 'serve'], r)) estRuns[cond].push(await establishedRun(cond));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
  const idle = await idleCpu();
  const time = { new: { floor: [], ctop: [] }, est: { floor: [], ctop: [] } };
  const restoreStats = enableBpfStats();
  onStats(restoreStats);
  try {
    for (let r = 0; r < STATS_ROUNDS; r++) {
      for (const mode of ['new', 'est']) {
        for (const cond of rotate(['floor', 'ctop'], r)) time[mode][cond].push(await programTime(cond, mode));
      }
    }
  } finally {
    restoreStats();
  }
  const m = (runs, k = 'pps') => median(runs.map((x) => x[k]));
  const spread = (runs, k) => ({ median: m(runs, k), min: Math.min(...runs.map((x) => x[k])), max: Math.max(...runs.map((x) => x[k])) });
  const res = {
    rounds: ROUNDS,
    pinnedCpu: PIN >= 0 ? PIN : null,
    flowsPerRun: FLOWS,
    packetsPerRun: PACKETS,
    newFlowPps: { none: m(newRuns.none), floor: m(newRuns.floor), ctop: m(newRuns.ctop), ctop1Hz: m(newRuns.serve), conntrackE: m(newRuns.events) },
    establishedPps: { none: m(estRuns.none), floor: m(estRuns.floor), ctop: m(estRuns.ctop), ctop1Hz: m(estRuns.serve) },
    // per-round ratios to none: median and range
    newFlowRatio: { floor: ratioSpread(newRuns, 'floor'), ctop: ratioSpread(newRuns, 'ctop'), ctop1Hz: ratioSpread(newRuns, 'serve'), conntrackE: ratioSpread(newRuns, 'events') },
    establishedRatio: { floor: ratioSpread(estRuns, 'floor'), ctop: ratioSpread(estRuns, 'ctop'), ctop1Hz: ratioSpread(estRuns, 'serve') },
    // kernel.bpf_stats_enabled: program ns per new flow / per established packet (all programs together)
    programNs: {
      perNewFlow: { ctop: spread(time.new.ctop, 'nsPerUnit'), floor: spread(time.new.floor, 'nsPerUnit') },
      // what ctop's programs do beyond the floor's dispatch and clock reads
      perNewFlowAboveFloor: m(time.new.ctop, 'nsPerUnit') - m(time.new.floor, 'nsPerUnit'),
      runsPerNewFlow: { ctop: m(time.new.ctop, 'runsPerUnit'), floor: m(time.new.floor, 'runsPerUnit') },
      perEstablishedPacket: { ctop: spread(time.est.ctop, 'nsPerUnit'), floor: spread(time.est.floor, 'nsPerUnit') },
    },
    completeness: {
      ctopCountedEqualsSent: newRuns.ctop.every((x) => x.counted === x.sent && x.kernelEntries === x.sent),
      ctopRuns: newRuns.ctop.map((x) => ({ sent: x.sent, counted: x.counted, kernelEntries: x.kernelEntries })),
      conntrackEEventsRatio: median(newRuns.events.map((x) => x.events / x.sent)),
      conntrackERuns: newRuns.events.map((x) => ({ sent: x.sent, events: x.events })),
    },
    ctopCpu: {
      idleUserPct: idle.userPct,
      idleSysPct: idle.sysPct,
      // the 1 Hz consumer: ctop serve reading every map and statistic each second
      floodUserPct: m(newRuns.serve, 'cpuUserPct'),
      floodSysPct: m(newRuns.serve, 'cpuSysPct'),
    },
    mapBytes: m(newRuns.ctop, 'mapBytes'),
  };
  res.ratios = {
    newFlowFloor: res.newFlowPps.floor / res.newFlowPps.none,
    establishedFloor: res.establishedPps.floor / res.establishedPps.none,
    newFlowCtop: res.newFlowPps.ctop / res.newFlowPps.none,
    newFlowCtop1Hz: res.newFlowPps.ctop1Hz / res.newFlowPps.none,
    newFlowConntrackE: res.newFlowPps.conntrackE / res.newFlowPps.none,
    establishedCtop: res.establishedPps.ctop / res.establishedPps.none,
    establishedCtop1Hz: res.establishedPps.ctop1Hz / res.establishedPps.none,
  };
  console.log(JSON.stringify(res, null, 2));
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
