#!/usr/bin/env node
// What ctop's programs cost per event, measured by the kernel itself
// (kernel.bpf_stats_enabled: run count and run time per program), during a
// new-flow flood with `ctop snapshot` attached, split per program. Unlike
// throughput ratios, which on this 2-core VM are bimodal from run to run,
// this is the time the programs actually ran, so it can be set against the
// flood's time per flow. bench/conntrack-cost.mjs measures the same beside
// the floor and the throughput ratios; this one is the quick per-program view.
//
//   npx tsc -p tsconfig.json && sudo node bench/bpf-runtime.mjs [--flows 300000] [--rounds 3] [--pin 1]
//
// One namespace of its own per round (conntrack on by one nft rule, traffic on
// its loopback only). kernel.bpf_stats_enabled is turned on for the run and put
// back as it was afterwards, also on failure or a signal.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableBpfStats, progDelta, progStats } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CTOP = join(ROOT, 'bin', 'ctop');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const FLOWS = arg('--flows', 300_000);
const ROUNDS = arg('--rounds', 3);
const PIN = arg('--pin', 1); // the flood on one CPU (taskset); -1: not pinned
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 90_000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const namespaces = new Set();
let restoreStats = () => {};
function restore() {
  restoreStats();
  for (const ns of namespaces) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { restore(); process.exit(130); });

async function round(i) {
  const ns = `ctop-b-rt-${process.pid}-${i}`;
  sh('ip', ['netns', 'add', ns]);
  namespaces.add(ns);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
  sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  const p = spawn(process.execPath, [CTOP, 'snapshot', '--netns', ns, '--duration', '10m', '--json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`ctop not ready: ${err}`)), 30_000);
    p.stderr.on('data', (d) => {
      err += d;
      if (/sampling for/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  await sleep(1000);
  const a = progStats(p.pid);
  const pin = PIN >= 0 ? ['taskset', '-c', String(PIN)] : [];
  const f = JSON.parse(sh('ip', ['netns', 'exec', ns, ...pin, FLOOD, 'new', '--dst', '198.18.0.2', '--port', '9', '--count', String(FLOWS), '--max-ms', '60000']).trim().split('\n').pop());
  const b = progStats(p.pid);
  p.kill('SIGINT');
  await new Promise((r) => p.on('close', r));
  sh('ip', ['netns', 'del', ns]);
  namespaces.delete(ns);
  const d = progDelta(a, b);
  const progs = {};
  for (const [name, v] of Object.entries(d.progs)) {
    progs[name] = { runs: v.runs, nsPerRun: Math.round(v.ns / v.runs), nsPerFlow: Number((v.ns / f.sent).toFixed(1)) };
  }
  const nsPerFlow = 1e9 / f.pps;
  const bpfNsPerFlow = d.ns / f.sent;
  return {
    sent: f.sent,
    pps: Math.round(f.pps),
    floodNsPerFlow: Math.round(nsPerFlow),
    bpfNsPerFlow: Number(bpfNsPerFlow.toFixed(1)),
    shareOfFlowTime: Number((bpfNsPerFlow / nsPerFlow).toFixed(4)),
    progs,
  };
}

const rounds = [];
try {
  restoreStats = enableBpfStats();
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round(i));
} finally {
  restore();
}
console.log(JSON.stringify({ flows: FLOWS, pinnedCpu: PIN >= 0 ? PIN : null, rounds }, null, 2));
