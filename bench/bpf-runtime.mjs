#!/usr/bin/env node
// What ctop's programs cost per event, measured by the kernel itself
// (kernel.bpf_stats_enabled: run count and run time per program), during a
// new-flow flood with `ctop snapshot` attached. Unlike throughput ratios,
// which on this 2-core VM are bimodal from run to run, this is the time the
// programs actually ran, so it can be set against the flood's time per flow.
//
//   npx tsc -p tsconfig.json && sudo node bench/bpf-runtime.mjs [--flows 300000] [--rounds 3]
//
// One namespace of its own per round (conntrack on by one nft rule, traffic on
// its loopback only). kernel.bpf_stats_enabled is turned on for the run and put
// back as it was afterwards, also on failure or a signal.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CTOP = join(ROOT, 'bin', 'ctop');
const STATS = '/proc/sys/kernel/bpf_stats_enabled';

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const FLOWS = arg('--flows', 300_000);
const ROUNDS = arg('--rounds', 3);
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 90_000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const statsBefore = readFileSync(STATS, 'utf8').trim();
const namespaces = new Set();
function restore() {
  writeFileSync(STATS, statsBefore);
  for (const ns of namespaces) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { restore(); process.exit(130); });

/** run_cnt and run_time_ns of the programs a process holds (prog_id lines in its fdinfo). */
function progStats(pid) {
  const ids = new Set();
  for (const fd of sh('ls', [`/proc/${pid}/fdinfo`]).split(/\s+/).filter(Boolean)) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  const out = {};
  for (const p of JSON.parse(sh('bpftool', ['-j', 'prog', 'show']))) {
    if (ids.has(p.id)) out[p.name] = { runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 };
  }
  return out;
}

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
  const f = JSON.parse(sh('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', '9', '--count', String(FLOWS), '--max-ms', '60000']).trim().split('\n').pop());
  const b = progStats(p.pid);
  p.kill('SIGINT');
  await new Promise((r) => p.on('close', r));
  sh('ip', ['netns', 'del', ns]);
  namespaces.delete(ns);
  const progs = {};
  for (const [name, v] of Object.entries(b)) {
    const runs = v.runs - (a[name]?.runs ?? 0);
    const nsTotal = v.ns - (a[name]?.ns ?? 0);
    if (runs > 0) progs[name] = { runs, nsPerRun: Math.round(nsTotal / runs), nsPerFlow: Number((nsTotal / f.sent).toFixed(1)) };
  }
  const nsPerFlow = 1e9 / f.pps;
  const bpfNsPerFlow = Object.values(progs).reduce((s, x) => s + x.nsPerFlow, 0);
  return { sent: f.sent, pps: Math.round(f.pps), floodNsPerFlow: Math.round(nsPerFlow), bpfNsPerFlow: Number(bpfNsPerFlow.toFixed(1)), shareOfFlowTime: Number((bpfNsPerFlow / nsPerFlow).toFixed(4)), progs };
}

const rounds = [];
try {
  writeFileSync(STATS, '1');
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round(i));
} finally {
  restore();
}
console.log(JSON.stringify({ flows: FLOWS, rounds }, null, 2));
