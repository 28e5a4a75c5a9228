#!/usr/bin/env node
// What `ctop demo` costs the machine it runs on: how long its namespace takes
// to reach nf_conntrack_max, how much kernel memory the entries hold (the
// nf_conntrack slab's objects, read from /proc/slabinfo), whether the numbers
// said up front hold, and how soon after exit the memory is back.
//
//   sudo node bench/demo-fill.mjs [--small] [--duration 15s]
//
// Runs `ctop demo --no-ui --json` (built: dist/, tools/bin/flood) and polls the
// demo namespace's count with `conntrack -C` every 100 ms. Prints one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CTOP = join(ROOT, 'bin', 'ctop');
const args = process.argv.slice(2);
const small = args.includes('--small');
const duration = args.includes('--duration') ? args[args.indexOf('--duration') + 1] : '15s';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function slab() {
  const m = /^nf_conntrack\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync('/proc/slabinfo', 'utf8'));
  return m ? { active: Number(m[1]), objBytes: Number(m[3]) } : { active: 0, objBytes: 0 };
}

function count(ns) {
  try {
    return Number(execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-C'], { encoding: 'utf8', timeout: 5000 }).trim());
  } catch {
    return -1;
  }
}

const max = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8'));
const slabBefore = slab();
const t0 = performance.now();
const p = spawn(process.execPath, [CTOP, 'demo', '--no-ui', '--json', '--duration', duration, ...(small ? ['--small'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
let err = '';
p.stdout.on('data', (d) => (out += d));
p.stderr.on('data', (d) => (err += d));
const exited = new Promise((r) => p.on('close', (code) => r(code)));

// the namespace's name, then the moment the traffic starts
while (!/traffic for/.test(err) && p.exitCode === null) await sleep(20);
const ns = /ctop-demo-\d+/.exec(err)?.[0];
const trafficAt = performance.now();
let fullAt = null;
let peakCount = 0;
let peakSlab = slabBefore.active;
while (p.exitCode === null) {
  const n = count(ns);
  peakCount = Math.max(peakCount, n);
  peakSlab = Math.max(peakSlab, slab().active);
  if (fullAt === null && n >= max) fullAt = performance.now();
  await sleep(100);
}
const code = await exited;
const endAt = performance.now();
// the kernel frees a deleted namespace's entries in the background
let freedAt = null;
for (let i = 0; i < 300; i++) {
  if (slab().active <= slabBefore.active + 0.01 * max) {
    freedAt = performance.now();
    break;
  }
  await sleep(100);
}
const doc = code === 0 ? JSON.parse(out) : null;
const round = (x) => (x === null ? null : Math.round(x));
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    size: small ? 'small' : 'full',
    exit: code,
    max,
    planEntries: doc?.plan.entries,
    planMemoryMiB: doc ? Math.round(doc.plan.memoryBytes / 2 ** 20) : null,
    planFillSeconds: doc?.plan.fillSeconds,
    peakCount,
    fillMs: fullAt === null ? null : round(fullAt - trafficAt),
    slabObjBytes: slabBefore.objBytes,
    slabPeakMiB: Math.round(((peakSlab - slabBefore.active) * slabBefore.objBytes) / 2 ** 20),
    wallMs: round(endAt - t0),
    freedAfterExitMs: freedAt === null ? null : round(freedAt - endAt),
    drops: doc?.snapshot.totals.drops,
  }),
);
