#!/usr/bin/env node
// What one refresh of the live screen costs with 64,000 tracked tuples: CPU
// time (process.cpuUsage, user + system) around one tick (read the source,
// update the model, compute and draw every panel into a blessed screen
// writing to a null terminal), and the process's peak resident memory.
//
//   npx tsc -p tsconfig.json && node bench/tui-refresh.mjs [--tuples 64000] [--ticks 200] [--views ports,tuples]
//   sudo node bench/tui-refresh.mjs --path kernel --moved 64000 [--max-tuples 131072] [--ticks 40]
//
// Two sources, each in every view of the top-talkers table:
//   replay: windows of a synthetic recording (what `ctop --replay` does per tick)
//   live:   a fake Source whose samples change all 64,000 tuples
//           every tick (the worst case), handed over as growth the way the
//           kernel source does, through LiveWindows and the same
//           buildSnapshot the kernel source uses; the native map read itself
//           is not included (no root, no addon).
// Needs no root and sends no traffic.
import { spawn } from 'node:child_process';
import { PassThrough, Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(join(ROOT, 'dist', p));
const { Controller } = await dist('tui/controller.js');
const { TuiScreen } = await dist('tui/screen.js');
const { LiveWindows } = await dist('source/windows.js');
const { buildSnapshot } = await dist('model/snapshot.js');
const { LAYOUT, decodeTupleColumns } = await dist('native/decode.js');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const TUPLES = arg('--tuples', 64_000);
const TICKS = arg('--ticks', 200);
// --path kernel: tuples that move in each window (the rest stay tracked, unchanged)
const MOVED = arg('--moved', TUPLES);
// --path kernel: how long the occupancy census runs beside the screen, after the ticks
const CENSUS_SECONDS = arg('--census-seconds', 20);
// --path kernel: the probe's --max-tuples. New flows' tuples go into one ring per CPU of
// max-tuples / CPUs slots (a power of two): a window can hand over at most that many per
// CPU, the rest are counted as tupleMapFull. 131,072 on this 2-CPU VM gives rings of
// 65,536, so 64,000 new flows between two reads fit even if all land on one CPU.
const MAX_TUPLES = arg('--max-tuples', 131_072);
// --views ports,tuples: measure only these views (all four by default)
const VIEWS_ARG = (() => {
  const i = process.argv.indexOf('--views');
  return i > 0 ? process.argv[i + 1].split(',') : undefined;
})();
// --path replay|live|all: peak RSS is per process, so measure each path in a process of its own.
const PATH = (() => {
  const i = process.argv.indexOf('--path');
  return i > 0 ? process.argv[i + 1] : 'all';
})();
const WARMUP = 20;
const COLS = 80;
const ROWS = 24;

process.env.TERM = 'xterm-256color';

/** A terminal that discards what it is sent: blessed still formats every byte. */
function nullTerminal() {
  let bytes = 0;
  const output = new Writable({
    write(chunk, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  Object.assign(output, { isTTY: true, columns: COLS, rows: ROWS });
  const input = new PassThrough();
  return { input, output, bytes: () => bytes };
}

const NS = [4026531840, 4026532001, 4026532002, 4026532003];
const addr = (i) => `198.18.${(i >> 8) & 255}.${i & 255}`;

function tupleAt(i, inserts, drops) {
  const proto = i % 5 === 0 ? 6 : 17;
  return { netns: NS[i & 3], family: 'ipv4', proto: proto === 6 ? 'tcp' : 'udp', protoNum: proto, src: addr(i >> 4), sport: 1024 + (i & 0x7fff), dst: '198.19.0.1', dport: 53 + (i % 200), inserts, drops };
}

/**
 * Sample number `n`: every tuple has gained inserts since n - 1. With
 * `window` the tuples are what the kernel source's takeTupleGrowth() hands
 * over (src/source/kernelSource.ts): only the growth since sample n - 1,
 * freshly decoded; without it, cumulative counts (what the window model
 * joins for sources that keep cumulative tuples).
 */
function sample(n, window = false, columns = false) {
  const tuples = new Array(columns ? 0 : TUPLES);
  for (let i = 0; i < tuples.length; i++) {
    const grow = 1 + (i % 7);
    const drop = i % 97 === 0 ? 1 : 0;
    tuples[i] = window ? tupleAt(i, grow, drop) : tupleAt(i, n * grow, n * drop);
  }
  const ports = [];
  for (let p = 0; p < 200; p++) ports.push({ netns: NS[p & 3], family: 'ipv4', proto: 17, port: 53 + p, inserts: n * (320 - p), drops: p % 10 === 0 ? n : 0 });
  const stats = { found: 0, invalid: 0, insert: 0, insertFailed: 0, drop: n * 660, earlyDrop: 0, error: 0, searchRestart: 0, clashResolve: 0, chainTooLong: 0 };
  return {
    monoMs: n * 1000,
    wallTime: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    probe: { tier: 'netfilter', programs: [], refused: [] },
    ports,
    tuples,
    totals: { inserts: n * TUPLES * 4, drops: n * 660, portOverflow: 0, tupleOverflow: 0, dropUnparsed: 0, netnsOverflow: 0, otherNfDrops: 0, dropTupleOverflow: 0 },
    namespaces: NS.map((inode, k) => ({ inode, name: k === 0 ? 'host' : `ns${k}`, count: 16_000 + n * 10 * (k + 1), stats, links: 2 })),
    max: 262_144,
    buckets: 65_536,
    capacity: { ports: 8192, tuples: 131_072, dropTuples: 4096 },
    dropTupleEntries: 660,
    netnsErrors: [],
  };
}

/** The window's tuples as the native core hands them over: one record each (bpf/ctop.h), copied into a fresh Buffer per read. */
function tupleRecords() {
  const b = Buffer.alloc(TUPLES * LAYOUT.tupleRecSize);
  for (let i = 0; i < TUPLES; i++) {
    const t = tupleAt(i, 1 + (i % 7), i % 97 === 0 ? 1 : 0);
    const off = i * LAYOUT.tupleRecSize;
    b.writeUInt32LE(t.netns, off);
    b.writeUInt8(2, off + 4);
    b.writeUInt8(t.protoNum, off + 5);
    b.writeUInt16LE(t.sport, off + 6);
    b.writeUInt16LE(t.dport, off + 8);
    Buffer.from(t.src.split('.').map(Number)).copy(b, off + LAYOUT.tupleSaddrOffset);
    Buffer.from([198, 19, 0, 1]).copy(b, off + LAYOUT.tupleDaddrOffset);
    b.writeUInt32LE(t.inserts, off + LAYOUT.tupleCountsOffset);
    b.writeUInt32LE(t.drops, off + LAYOUT.tupleCountsOffset + 8);
  }
  return b;
}

/** Cumulative counters; the tuples come as the kernel source hands them to the live screen: columns over a fresh copy of the records. */
class FakeSource {
  n = 0;
  records = tupleRecords();
  async start() {}
  sample() {
    return { ...sample(++this.n, true, true), tuples: [] };
  }
  takeTupleColumns() {
    return decodeTupleColumns(Buffer.from(this.records));
  }
  close() {}
}

const where = { host: 'bench', kernel: '6.18' };

function replaySource(windows) {
  let i = 0;
  // A fresh object per tick, as a real recording has one per window: no cache may carry over.
  return { label: 'replay bench', next: () => ({ ...windows[i++ % windows.length] }), close() {} };
}

function stats(us) {
  const s = [...us].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { medianMs: at(0.5) / 1000, p95Ms: at(0.95) / 1000, maxMs: s[s.length - 1] / 1000 };
}

async function run(name, source, viewIndex) {
  const term = nullTerminal();
  const screen = new TuiScreen({ color: true, input: term.input, output: term.output });
  const c = new Controller(source, 1000, { color: true });
  c.state = { ...c.state, viewIndex };
  const costs = [];
  for (let t = 0; t < WARMUP + TICKS; t++) {
    const before = process.cpuUsage();
    c.tick();
    screen.draw(c.frame(COLS, ROWS, { label: source.label }));
    const d = process.cpuUsage(before);
    if (t >= WARMUP) costs.push(d.user + d.system);
    // Let blessed's writes and the GC run between ticks, as the real clock does.
    await new Promise((r) => setImmediate(r));
  }
  screen.destroy();
  const r = stats(costs);
  console.log(`${name.padEnd(22)} median ${r.medianMs.toFixed(2).padStart(6)} ms  p95 ${r.p95Ms.toFixed(2).padStart(6)} ms  max ${r.maxMs.toFixed(2).padStart(6)} ms`);
  return r;
}

const ALL_VIEWS = ['ports', 'tuples', 'sources', 'namespaces'];
const views = VIEWS_ARG ?? ALL_VIEWS;
// a view's place in the screen's tab order (src/tui/talkers.ts VIEWS)
const viewIndex = (v) => {
  const i = ALL_VIEWS.indexOf(v);
  if (i < 0) throw new Error(`--views: unknown view ${v} (ports, tuples, sources, namespaces)`);
  return i;
};
console.log(`ctop live screen, one refresh, ${TUPLES} tuples, ${COLS}x${ROWS}, ${TICKS} ticks after ${WARMUP} warm-up (node ${process.version})`);

// Replay: a few distinct windows, built once (as readRecording does at start).
const windows = [];
for (let n = 1; n <= 3 && (PATH === 'replay' || PATH === 'all'); n++) windows.push(buildSnapshot(sample(n), sample(n + 1), { ...where, top: 0 }));
if (PATH === 'replay' || PATH === 'all') for (const v of views) await run(`replay, ${v}`, replaySource(windows), viewIndex(v));
windows.length = 0;

// Live: the fake source and buildSnapshot run inside every tick.
if (PATH === 'live' || PATH === 'all') {
  for (const v of views) {
    const live = new LiveWindows(new FakeSource(), where, { top: 0, unsorted: true, columns: true });
    await live.start();
    await run(`live, ${v}`, live, viewIndex(v));
  }
}

// buildSnapshot alone (src/model/snapshot.ts), to show what part of a live tick is the window model.
if (PATH === 'live' || PATH === 'all') {
  const a = { ...sample(1, true), tuples: [] };
  const tupleGrowth = sample(2, true).tuples;
  const b = { ...sample(2, true), tuples: [] };
  const costs = [];
  for (let t = 0; t < 60; t++) {
    const before = process.cpuUsage();
    buildSnapshot(a, b, { ...where, top: 0, unsorted: true, tupleGrowth }); // as LiveWindows calls it
    const d = process.cpuUsage(before);
    if (t >= 10) costs.push(d.user + d.system);
  }
  const r = stats(costs);
  console.log(`${'buildSnapshot only'.padEnd(22)} median ${r.medianMs.toFixed(2).padStart(6)} ms  p95 ${r.p95Ms.toFixed(2).padStart(6)} ms`);
}

// Kernel: the real thing. ctop's programs attached to a namespace of the
// benchmark's own, TUPLES distinct UDP tuples in the per-tuple map, and before
// every tick the namespace's table is flushed and the same TUPLES tuples sent
// again, so every tuple moves in every window (the worst case), through the
// addon's map reads and windows, the model and the screen. Root only; not in
// --path all.
if (PATH === 'kernel') await kernelPath();

async function kernelPath() {
  const { execFileSync } = await import('node:child_process');
  const { KernelSource } = await dist('source/kernelSource.js');
  const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
  const ns = `ctop-b-tui-${process.pid}`;
  const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  const inNs = (args) => sh('ip', ['netns', 'exec', ns, ...args]);
  const cleanup = () => {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });
  sh('ip', ['netns', 'add', ns]);
  // The flush and the flood run in a helper process started now, while this
  // one is small: a child spawned from here would fork this process, and
  // after a fork every page it writes takes a copy-on-write fault (about
  // 100 ms a tick at 64,000 tuples). The real screen never forks per tick.
  const refiller = startRefiller(ns, FLOOD);
  let source;
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
    // one rule that needs conntrack; it never changes a verdict
    inNs(['nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
    source = new KernelSource({ tier: 'netfilter', netns: ns, maxPorts: 8192, maxTuples: MAX_TUPLES, maxDropTuples: 4096, rescanMs: 1000 });
    // as `ctop top` opens it: tuples handed over as columns
    const live = new LiveWindows(source, where, { top: 0, unsorted: true, columns: true });
    await live.start();
    // every TUPLES tuple tracked once, and that window read away; then each tick the first MOVED of them again
    await refiller.run(TUPLES);
    live.next();
    const refill = () => (MOVED > 0 ? refiller.run(MOVED) : Promise.resolve());
    for (const v of views) {
      const term = nullTerminal();
      const screen = new TuiScreen({ color: true, input: term.input, output: term.output });
      const c = new Controller(live, 1000, { color: true });
      c.state = { ...c.state, viewIndex: viewIndex(v) };
      const costs = [];
      for (let t = 0; t < 3 + TICKS; t++) {
        await refill();
        const before = process.cpuUsage();
        c.tick();
        screen.draw(c.frame(COLS, ROWS, { label: live.label }));
        const d = process.cpuUsage(before);
        // every measured window must have handed over exactly MOVED tuples, none lost to a full ring:
        // otherwise the figure would be of a smaller window than it claims
        const w = c.model.current;
        const moved = w?.tupleColumns?.length ?? 0;
        const lost = w?.overflow.tupleMapFull ?? 0;
        if (process.env.CTOP_BENCH_DEBUG) console.error(`${v} window ${t}: ${moved} handed over, ${lost} lost, ${w?.totals.inserts} inserts`);
        if (moved !== MOVED || lost !== 0) {
          throw new Error(`window ${t}: ${moved} tuples handed over and ${lost} lost (tupleMapFull), not ${MOVED} moved: raise --max-tuples`);
        }
        if (t >= 3) costs.push(d.user + d.system);
        await new Promise((r) => setImmediate(r));
      }
      screen.destroy();
      const r = stats(costs);
      console.log(`${`kernel, ${v}`.padEnd(22)} median ${r.medianMs.toFixed(2).padStart(6)} ms  p95 ${r.p95Ms.toFixed(2).padStart(6)} ms  max ${r.maxMs.toFixed(2).padStart(6)} ms  (${MOVED} of ${TUPLES} tracked tuples moved in each of the ${TICKS} windows, checked)`);
    }
    // Beside it, the occupancy census the screen runs in its own thread (measured
    // apart: its CPU would otherwise land in whichever tick it overlapped).
    const { startBackgroundCensus } = await dist('source/occupancy.js');
    const census = startBackgroundCensus(source, { occupancy: 'auto', budgetShare: 0.02 });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, CENSUS_SECONDS * 1000));
    const cpu = process.cpuUsage(cpu0);
    const x = census.input();
    census.close();
    if (!x) throw new Error(`no census in ${CENSUS_SECONDS} s`);
    const entries = x.census.namespaces.reduce((a, n) => a + n.entries, 0);
    console.log(
      `occupancy census      ${x.census.method}, ${entries} entries: ${x.cost.lastCpuMs.toFixed(1)} ms CPU (${x.cost.lastWallMs.toFixed(1)} ms wall) per census, ` +
        `every ${(x.cost.intervalMs / 1000).toFixed(1)} s; ${x.cost.censuses} censuses in ${CENSUS_SECONDS} s, ` +
        `census thread ${(x.cost.cpuShare * 100).toFixed(2)} % of a core, whole idle process ${((100 * (cpu.user + cpu.system)) / 1000 / (performance.now() - t0)).toFixed(2)} % (budget 2 %)`,
    );
  } finally {
    source?.close();
    refiller.stop();
    cleanup();
  }
}

/** A child that, per request, empties the namespace's table and sends the
 * first `count` of the same flows again (flood walks its tuples from the
 * same start each run). */
function startRefiller(ns, flood) {
  const code = `
    const { execFileSync } = require('node:child_process');
    process.on('message', (count) => {
      try {
        execFileSync('ip', ['netns', 'exec', ${JSON.stringify(ns)}, 'conntrack', '-F'], { stdio: 'ignore', timeout: 60000 });
        const out = execFileSync('ip', ['netns', 'exec', ${JSON.stringify(ns)}, ${JSON.stringify(flood)}, 'new', '--dst', '198.18.0.2', '--port', '9', '--count', String(count), '--max-ms', '20000'], { encoding: 'utf8', timeout: 60000 });
        process.send({ sent: JSON.parse(out.trim().split('\\n').pop()).sent, count });
      } catch (e) {
        process.send({ error: String(e.message) });
      }
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    run: (count) =>
      new Promise((resolve, reject) => {
        child.once('message', (m) => (m.error ? reject(new Error(m.error)) : m.sent !== count ? reject(new Error(`flood sent ${m.sent} of ${count}`)) : resolve()));
        child.send(count);
      }),
    stop: () => child.kill(),
  };
}

const peakMb = process.resourceUsage().maxRSS / 1024;
console.log(`peak RSS ${peakMb.toFixed(0)} MB`);
