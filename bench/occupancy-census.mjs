#!/usr/bin/env node
// What the live screen's background census costs: its CPU share of one core,
// against the 2 % budget, and how old that makes the occupancy figures.
//
//   npx tsc -p tsconfig.json
//   sudo node bench/occupancy-census.mjs --entries 100000 --seconds 40
//   sudo node bench/occupancy-census.mjs --entries 1000000 --seconds 100
//
// Builds a table of --entries UDP entries in a namespace of its own
// (conntrack on by one nft rule, UDP timeout 1 h there so nothing expires)
// with tools/bin/flood, then runs the screen's BackgroundCensus (the worker
// thread, src/source/occupancyWorker.ts) for --seconds while this process
// does nothing else. Reported: each census's CPU time and wall time as the
// census thread measured them (/proc/thread-self/schedstat), the interval the
// budget gave, the share of CPU since the thread started as each census ends
// (the highest point between two censuses), its maximum from the second
// census on (the budget's promise: the first census runs at once and is paid
// back before the second), when the first census arrived, and, independently,
// the whole process's CPU time (process.cpuUsage) over the run divided by the
// run's length, beside the same figure for this benchmark's own polling loop
// run alone for 5 s before the census starts (its baseline). nf_conntrack_max is raised for the run and restored, also on
// failure or Ctrl-C.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CT_MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';
const dist = (p) => import(join(ROOT, 'dist', p));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ENTRIES = arg('--entries', 100_000);
const SECONDS = arg('--seconds', 40);
const BUDGET = arg('--budget', 0.02);

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 180_000, ...opts });
const ns = `ctop-b-occ-${process.pid}`;
const oldMax = readFileSync(CT_MAX_PATH, 'utf8').trim();
let census;
function cleanup() {
  census?.close();
  try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
  writeFileSync(CT_MAX_PATH, oldMax);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => { cleanup(); process.exit(130); });

try {
  writeFileSync(CT_MAX_PATH, String(Math.max(Number(oldMax), ENTRIES + 100_000)));
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
  sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
  const f = JSON.parse(sh('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', '5001', '--count', String(ENTRIES), '--max-ms', '170000']).trim().split('\n').pop());
  const count = Number(sh('ip', ['netns', 'exec', ns, 'conntrack', '-C']).trim());
  const { BackgroundCensus } = await dist('source/occupancy.js');
  const { resolveNetns } = await dist('source/netnsScan.js');
  const results = [];
  // the polling loop below, alone: what the process costs without a census
  const base0 = process.cpuUsage();
  const tb = performance.now();
  while (performance.now() - tb < 5000) await new Promise((r) => setTimeout(r, 100));
  const base = process.cpuUsage(base0);
  const baselineShare = (base.user + base.system) / 1000 / (performance.now() - tb);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  census = new BackgroundCensus({ target: resolveNetns(ns), budgetShare: BUDGET });
  census.start();
  let seen;
  while (performance.now() - t0 < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 100));
    const x = census.input();
    if (x && x !== seen) {
      seen = x;
      results.push({ atS: Math.round((performance.now() - t0) / 100) / 10, method: x.census.method, entries: x.census.namespaces.reduce((a, n) => a + n.entries, 0), ...x.cost });
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const elapsedMs = performance.now() - t0;
  census.close();
  census = undefined;
  const last = results.at(-1);
  console.log(JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    entries: { sent: f.sent, inTable: count },
    budgetShare: BUDGET,
    runSeconds: Math.round(elapsedMs / 100) / 10,
    censuses: results,
    firstCensusAtS: results[0]?.atS,
    threadShareAtLastCensus: last?.cpuShare,
    threadShareMaxFromSecondCensus: results.length > 1 ? Math.max(...results.slice(1).map((r) => r.cpuShare)) : null,
    processShare: Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 10_000) / 10_000,
    processBaselineShare: Math.round(baselineShare * 10_000) / 10_000,
  }, null, 2));
} finally {
  cleanup();
}
