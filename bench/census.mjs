#!/usr/bin/env node
// ctop census against the usual shell pipeline, side by side in one run, on a
// table of 1,000,000 entries; and what a census costs new-flow throughput.
//
//   sudo node bench/census.mjs [--entries 1000000] [--rounds 3] [--flows 400000]
//
// Builds the table in a namespace of its own (conntrack enabled by one nft
// rule, UDP timeout 1 h there so nothing expires mid-run) with tools/bin/flood:
// every packet a new entry to 198.18.0.2:5001 from 198.19.0.0/16. Then, in a
// rotating order each round:
//   ctop        `ctop census --netns NS --json` (in-kernel walk: table found,
//               every bucket walked, entries counted), whole process wall time
//   ctnetlink   the same forced onto its fallback (`--occupancy ctnetlink
//               --chains model`): one ctnetlink dump counted in C
//   shell       `conntrack -L | awk (dport) | sort | uniq -c` per-port counting
// and checks that all three count 5001 the same. Throughput: a second
// namespace floods --flows new flows with no census running, and with
// censuses of the whole table running back to back; medians per condition.
// nf_conntrack_max is raised for the run and restored, also on failure/Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CTOP = join(ROOT, 'bin', 'ctop');
const CT_MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ENTRIES = arg('--entries', 1_000_000);
const ROUNDS = arg('--rounds', 3);
const FLOWS = arg('--flows', 400_000);
const PORT = 5001;

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20, ...opts });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const made = [];
function makeNs(tag) {
  const ns = `ctop-b-census-${process.pid}-${tag}`;
  sh('ip', ['netns', 'add', ns]);
  made.push(ns);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
  sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
  return ns;
}
function delNs(ns) {
  try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
  const i = made.indexOf(ns);
  if (i >= 0) made.splice(i, 1);
}

function flood(ns, count) {
  const out = sh('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', String(PORT), '--count', String(count), '--max-ms', '120000'], { timeout: 180_000 });
  return JSON.parse(out.trim().split('\n').pop());
}

/** The same flood without blocking this process, so censuses can start while it runs. */
function floodAsync(ns, count) {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', String(PORT), '--count', String(count), '--max-ms', '120000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`flood exited ${code}`))));
  });
}

function timed(cmd, args) {
  const t0 = performance.now();
  const out = sh(cmd, args);
  return { ms: performance.now() - t0, out };
}

function runCtop(ns, extra) {
  const r = timed(process.execPath, [CTOP, 'census', '--netns', ns, '--json', '--rate-window', '0s', '--top', '5', ...extra]);
  const rep = JSON.parse(r.out);
  const nsRep = rep.namespaces.find((n) => n.name === ns);
  const port = nsRep.groups.filter((g) => g.port === PORT).reduce((a, g) => a + g.entries, 0);
  return {
    ms: r.ms, occupancyMs: rep.occupancyMs, walkMs: rep.buckets.walkMs ?? null, runs: rep.buckets.runs ?? null,
    bucketsPerRun: rep.buckets.bucketsPerRun ?? null, maxRunMs: rep.buckets.maxRunMs ?? null, phasesMs: rep.buckets.phasesMs ?? null,
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
async function throughputRun(tableNs, withCensus, round) {
  const ns = makeNs(`f${round}${withCensus ? 'c' : 'n'}`);
  await sleep(1000); // namespace set-up work settles in the background
  let stop = false;
  let censuses = 0;
  const loop = (async () => {
    while (withCensus && !stop) {
      await new Promise((res) => {
        const p = spawn(process.execPath, [CTOP, 'census', '--netns', tableNs, '--json', '--rate-window', '0s'], { stdio: 'ignore' });
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

async function runAll() {
  const tableNs = makeNs('table');
  const built = flood(tableNs, ENTRIES);
  const count = Number(sh('ip', ['netns', 'exec', tableNs, 'conntrack', '-C']).trim());
  if (count !== ENTRIES) throw new Error(`the table holds ${count} entries, expected ${ENTRIES} (flood: ${JSON.stringify(built)})`);
  const runs = { ctop: [], ctnetlink: [], shell: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of rotate(['ctop', 'ctnetlink', 'shell'], r)) {
      if (c === 'ctop') runs.ctop.push(runCtop(tableNs, []));
      else if (c === 'ctnetlink') runs.ctnetlink.push(runCtop(tableNs, ['--occupancy', 'ctnetlink', '--chains', 'model']));
      else runs.shell.push(runShell(tableNs));
    }
    process.stderr.write(`census round ${r + 1}/${ROUNDS} done\n`);
  }
  const agree = [...runs.ctop, ...runs.ctnetlink, ...runs.shell].every((x) => x.port === ENTRIES);
  const tp = { none: [], census: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of rotate(['none', 'census'], r)) tp[c].push(await throughputRun(tableNs, c === 'census', r));
    process.stderr.write(`throughput round ${r + 1}/${ROUNDS} done\n`);
  }
  delNs(tableNs);
  const m = (xs, k) => median(xs.map((x) => x[k]));
  const res = {
    entries: ENTRIES,
    rounds: ROUNDS,
    buckets: Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim()),
    countsAgree: agree,
    censusMs: {
      ctopWholeCommand: m(runs.ctop, 'ms'),
      ctopInKernelCount: m(runs.ctop, 'occupancyMs'),
      ctopWalkOnly: m(runs.ctop, 'walkMs'),
      ctopLongestBpfRun: m(runs.ctop, 'maxRunMs'),
      ctnetlinkWholeCommand: m(runs.ctnetlink, 'ms'),
      ctnetlinkDump: m(runs.ctnetlink, 'occupancyMs'),
      conntrackLAwk: m(runs.shell, 'ms'),
    },
    walkRuns: { runs: runs.ctop[0]?.runs, bucketsPerRun: runs.ctop[0]?.bucketsPerRun },
    methods: { ctop: runs.ctop[0]?.method, ctopChains: runs.ctop[0]?.chains, fallback: runs.ctnetlink[0]?.method },
    newFlowPps: { none: m(tp.none, 'pps'), duringCensus: m(tp.census, 'pps') },
    censusesDuringFloods: tp.census.map((x) => x.censuses),
    runs: { census: runs, throughput: tp },
  };
  res.ratios = {
    speedupWholeCommand: res.censusMs.conntrackLAwk / res.censusMs.ctopWholeCommand,
    speedupInKernelCount: res.censusMs.conntrackLAwk / res.censusMs.ctopInKernelCount,
    speedupCtnetlinkFallback: res.censusMs.conntrackLAwk / res.censusMs.ctnetlinkWholeCommand,
    throughputDuringCensus: res.newFlowPps.duringCensus / res.newFlowPps.none,
  };
  console.log(JSON.stringify(res, null, 2));
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
  writeFileSync(CT_MAX_PATH, String(Math.max(Number(oldMax), ENTRIES + 100_000, FLOWS + 100_000)));
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
