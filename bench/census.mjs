#!/usr/bin/env node
// ctop census against the usual shell pipeline, side by side in one run, at
// several table sizes; and what censuses cost new-flow throughput.
//
//   sudo node bench/census.mjs [--sizes 10000,100000,200000,1000000] [--rounds 5] [--flows 400000] [--unset-env NAME,...]
//
// --unset-env removes variables from the environment of the Node.js processes
// it times (`node -e 0`, ctop), e.g. NODE_EXTRA_CA_CERTS, which makes every
// node process read and parse a CA bundle at start (35 ms here); `sudo`
// usually drops it anyway.
//
// Grows one table in a namespace of its own (conntrack enabled by one nft
// rule, UDP timeout 1 h there so nothing expires mid-run) with tools/bin/flood
// to each size in turn: every packet a new entry to 198.18.0.2:5001 from
// 198.19.0.0/16 (--start continues where the last flood stopped). At each
// size, in a rotating order each round:
//   node        `node -e 0`: the floor any Node.js command pays before its first line runs
//   ctop        `ctop census --netns NS --json` (in-kernel walk: table found,
//               every bucket walked on every CPU, entries counted), whole process wall time,
//               and the phases the JSON reports (loading the walk programs, finding the
//               table: both on native threads beside the start-up, and how long the
//               command still waited for them; the walk itself, reading the counts)
//   ctnetlink   the same forced onto its fallback (`--occupancy ctnetlink
//               --chains model`): one ctnetlink dump counted in C
//   shell       `conntrack -L | awk (dport) | sort | uniq -c` per-port counting
// and checks that all three count 5001 the same. Reported per size: median,
// minimum and maximum of each, the speed-up (shell median / ctop median), the
// walk's wall time per entry apart from the process's start-up, its CPU time
// per entry (the walking threads' CPU time, all threads summed: the JSON's
// buckets.walkCpuMs), and what the rest of the command costs. Throughput (largest size only, --flows 0 skips
// it): a second namespace floods --flows new flows with no census running, with
// censuses of the whole table running back to back on every CPU (the
// default), and the same with `--walk-threads 1`; medians per condition.
// nf_conntrack_max is raised for the run and restored, also on failure/Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTableNs } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CTOP = join(ROOT, 'bin', 'ctop');
const CT_MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const SIZES = String(arg('--sizes', '10000,100000,200000,1000000')).split(',').map(Number).sort((a, b) => a - b);
const ROUNDS = Number(arg('--rounds', 5));
const FLOWS = Number(arg('--flows', 400_000));
const PORT = 5001;
const UNSET = String(arg('--unset-env', '')).split(',').filter(Boolean);
const NODE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !UNSET.includes(k)));

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20, ...opts });
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const spread = (xs) => ({ median: r1(median(xs)), min: r1(Math.min(...xs)), max: r1(Math.max(...xs)) });
const r1 = (x) => Math.round(x * 10) / 10;
const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const made = [];
function makeNs(tag) {
  const ns = makeTableNs(`ctop-b-census-${process.pid}-${tag}`);
  made.push(ns);
  return ns;
}
function delNs(ns) {
  try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
  const i = made.indexOf(ns);
  if (i >= 0) made.splice(i, 1);
}

function floodArgs(ns, count, start) {
  return ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', String(PORT), '--count', String(count), '--start', String(start), '--max-ms', '120000'];
}
function flood(ns, count, start) {
  return JSON.parse(sh('ip', floodArgs(ns, count, start)).trim().split('\n').pop());
}

/** The same flood without blocking this process, so censuses can start while it runs. */
function floodAsync(ns, count) {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', floodArgs(ns, count, 0), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`flood exited ${code}`))));
  });
}

function timed(cmd, args, env) {
  const t0 = performance.now();
  const out = sh(cmd, args, env ? { env } : {});
  return { ms: performance.now() - t0, out };
}

function runNode() {
  return { ms: timed(process.execPath, ['-e', '0'], NODE_ENV).ms };
}

function runCtop(ns, extra) {
  const r = timed(process.execPath, [CTOP, 'census', '--netns', ns, '--json', '--rate-window', '0s', '--top', '5', ...extra], NODE_ENV);
  const rep = JSON.parse(r.out);
  const nsRep = rep.namespaces.find((n) => n.name === ns);
  const port = nsRep.groups.filter((g) => g.port === PORT).reduce((a, g) => a + g.entries, 0);
  const b = rep.buckets;
  return {
    ms: r.ms, occupancyMs: rep.occupancyMs, walkMs: b.walkMs ?? null, walkCpuMs: b.walkCpuMs ?? null, reads: b.reads ?? null, runs: b.runs ?? null, threads: b.threads ?? null,
    bucketsPerRun: b.bucketsPerRun ?? null, maxRunMs: b.maxRunMs ?? null, phasesMs: b.phasesMs ?? null, locatedBy: b.locatedBy ?? null,
    method: rep.methods.occupancy, chains: rep.methods.chains, port,
  };
}

function runShell(ns) {
  const script = "conntrack -L 2>/dev/null | awk '{for(i=1;i<=NF;i++) if($i ~ /^dport=/){print $1, substr($i,7); break}}' | sort | uniq -c";
  const r = timed('ip', ['netns', 'exec', ns, 'bash', '-o', 'pipefail', '-c', script]);
  const line = r.out.split('\n').find((l) => new RegExp(`\\budp ${PORT}$`).test(l.trim()));
  return { ms: r.ms, port: line ? Number(line.trim().split(/\s+/)[0]) : 0 };
}

/** New flows per second in a fresh namespace, with or without censuses running back to back. */
async function throughputRun(tableNs, condition, round) {
  const withCensus = condition !== 'none';
  const extra = condition === 'censusOneThread' ? ['--walk-threads', '1'] : [];
  const ns = makeNs(`f${round}${condition.slice(0, 7)}`);
  await sleep(1000); // namespace set-up work settles in the background
  let stop = false;
  let censuses = 0;
  const loop = (async () => {
    while (withCensus && !stop) {
      await new Promise((res) => {
        const p = spawn(process.execPath, [CTOP, 'census', '--netns', tableNs, '--json', '--rate-window', '0s', ...extra], { stdio: 'ignore', env: NODE_ENV });
        p.on('close', () => { censuses++; res(); });
      });
    }
  })();
  if (withCensus) await sleep(300); // the first census is under way when the flood starts
  const r = await floodAsync(ns, FLOWS);
  stop = true;
  await loop;
  delNs(ns);
  return { pps: r.pps, sent: r.sent, errors: r.errors, censuses };
}

function summarize(size, runs) {
  const ctop = runs.ctop;
  const phase = (k) => spread(ctop.map((x) => x.phasesMs?.[k] ?? NaN));
  const walkMed = median(ctop.map((x) => x.walkMs));
  const s = {
    entries: size,
    countsAgree: [...runs.ctop, ...runs.ctnetlink, ...runs.shell].every((x) => x.port === size),
    ms: {
      nodeFloor: spread(runs.node.map((x) => x.ms)),
      ctopWholeCommand: spread(ctop.map((x) => x.ms)),
      ctopInKernelCount: spread(ctop.map((x) => x.occupancyMs)),
      ctopRestOfCommand: spread(ctop.map((x) => x.ms - x.occupancyMs)),
      ctnetlinkWholeCommand: spread(runs.ctnetlink.map((x) => x.ms)),
      ctnetlinkDump: spread(runs.ctnetlink.map((x) => x.occupancyMs)),
      conntrackLAwk: spread(runs.shell.map((x) => x.ms)),
    },
    // load and locate run on native threads beside the command's start-up: each step's own time,
    // and startWait, how long the command still waited for them
    ctopPhasesMs: { load: phase('loadMs'), locate: phase('locateMs'), startWait: phase('startWaitMs'), walk: phase('walkMs'), read: phase('readMs') },
    walk: {
      runs: ctop[0]?.runs, bucketsPerRun: ctop[0]?.bucketsPerRun, threads: ctop[0]?.threads, locatedBy: ctop[0]?.locatedBy, reads: ctop[0]?.reads,
      longestBpfRunMs: spread(ctop.map((x) => x.maxRunMs)),
      // the walk's wall time per entry, apart from process start-up, loading and finding the table
      nsPerEntry: Math.round((walkMed * 1e6) / size),
      // CPU time of the walking threads (all of them) per entry: the walk's cost, whatever the CPUs
      cpuMs: spread(ctop.map((x) => x.walkCpuMs)),
      cpuNsPerEntry: Math.round((median(ctop.map((x) => x.walkCpuMs)) * 1e6) / size),
    },
    methods: { ctop: ctop[0]?.method, ctopChains: ctop[0]?.chains, fallback: runs.ctnetlink[0]?.method },
  };
  s.speedup = {
    wholeCommand: r2(s.ms.conntrackLAwk.median / s.ms.ctopWholeCommand.median),
    // the same, each side's slowest and fastest round against the other's
    wholeCommandRange: [r2(s.ms.conntrackLAwk.min / s.ms.ctopWholeCommand.max), r2(s.ms.conntrackLAwk.max / s.ms.ctopWholeCommand.min)],
    inKernelCount: r2(s.ms.conntrackLAwk.median / s.ms.ctopInKernelCount.median),
    ctnetlinkFallback: r2(s.ms.conntrackLAwk.median / s.ms.ctnetlinkWholeCommand.median),
    // the most a Node.js command could reach: the shell against node's own start-up
    nodeFloorBound: r2(s.ms.conntrackLAwk.median / s.ms.nodeFloor.median),
  };
  return s;
}
const r2 = (x) => Math.round(x * 100) / 100;

async function runAll() {
  const tableNs = makeNs('table');
  const results = [];
  let filled = 0;
  for (const size of SIZES) {
    const built = flood(tableNs, size - filled, filled);
    filled = size;
    const count = Number(sh('ip', ['netns', 'exec', tableNs, 'conntrack', '-C']).trim());
    if (count !== size) throw new Error(`the table holds ${count} entries, expected ${size} (flood: ${JSON.stringify(built)})`);
    const runs = { node: [], ctop: [], ctnetlink: [], shell: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of rotate(['node', 'ctop', 'ctnetlink', 'shell'], r)) {
        if (c === 'node') runs.node.push(runNode());
        else if (c === 'ctop') runs.ctop.push(runCtop(tableNs, []));
        else if (c === 'ctnetlink') runs.ctnetlink.push(runCtop(tableNs, ['--occupancy', 'ctnetlink', '--chains', 'model']));
        else runs.shell.push(runShell(tableNs));
      }
    }
    results.push(summarize(size, runs));
    process.stderr.write(`census at ${size} entries: ${JSON.stringify(results.at(-1).speedup)}\n`);
  }
  let throughput = null;
  if (FLOWS > 0) {
    const tp = { none: [], census: [], censusOneThread: [] };
    for (let r = 0; r < 3; r++) {
      for (const c of rotate(['none', 'census', 'censusOneThread'], r)) tp[c].push(await throughputRun(tableNs, c, r));
      process.stderr.write(`throughput round ${r + 1}/3 done\n`);
    }
    throughput = {
      tableEntries: filled,
      newFlowPps: {
        none: median(tp.none.map((x) => x.pps)),
        duringCensus: median(tp.census.map((x) => x.pps)),
        duringCensusOneThread: median(tp.censusOneThread.map((x) => x.pps)),
      },
      censusesDuringFloods: { allCpus: tp.census.map((x) => x.censuses), oneThread: tp.censusOneThread.map((x) => x.censuses) },
      rounds: tp,
    };
    throughput.ratio = r2(throughput.newFlowPps.duringCensus / throughput.newFlowPps.none);
    throughput.ratioOneThread = r2(throughput.newFlowPps.duringCensusOneThread / throughput.newFlowPps.none);
  }
  delNs(tableNs);
  console.log(JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavgAtEnd: loadavg().map(r2),
    buckets: Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim()),
    rounds: ROUNDS,
    unsetForNodeProcesses: UNSET,
    sizes: results,
    throughput,
  }, null, 2));
}

async function main() {
  if (process.getuid() !== 0) {
    console.error('bench: needs root (network namespaces, BPF)');
    process.exit(2);
  }
  const oldMax = readFileSync(CT_MAX_PATH, 'utf8').trim();
  const cleanup = () => {
    writeFileSync(CT_MAX_PATH, oldMax);
    for (const ns of [...made]) delNs(ns);
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  // the table and a flood namespace side by side (the limit applies per namespace)
  const largest = SIZES.at(-1);
  writeFileSync(CT_MAX_PATH, String(Math.max(Number(oldMax), largest + 100_000, FLOWS + 100_000)));
  try {
    await runAll();
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
