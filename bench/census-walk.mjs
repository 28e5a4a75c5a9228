#!/usr/bin/env node
// Where a census walk's time goes per entry: the in-kernel walk alone (no
// process start-up, loading or finding the table), cut short at each stage.
//
//   sudo node bench/census-walk.mjs [--sizes 200000,1000000] [--rounds 3]
//
// Grows one table in a namespace of its own (conntrack on by one nft rule, UDP
// timeout 1 h there) with tools/bin/flood, as bench/census.mjs does: every
// entry a UDP flow to 198.18.0.2:5001 from 198.19.0.0/16. At each size, for
// each way of reading kernel memory the walk has (`direct`: plain loads, 8
// chains side by side, Linux >= 6.2; `probe-read`: bpf_probe_read_kernel, one
// chain at a time, what older kernels run), one loaded walker runs, in a
// rotating order each round:
//   walk     every chain followed and measured (the chain histogram), nothing counted
//   groups   and every entry counted per (namespace, family, protocol, port, state)
//   census   and its source and destination addresses counted: what `ctop census` does
// each on one thread (`--walk-threads 1`: its CPU time per entry is the cost)
// and on every CPU (the default: the wall time). Per variant: the walk
// program's run time from the kernel's own clock (kernel.bpf_stats_enabled,
// on for the run and restored), the walking threads' CPU time and the wall
// time, per entry. A census variant must count every entry of the namespace.
// nf_conntrack_max is raised for the run and restored, also on failure/Ctrl-C.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableBpfStats, makeTableNs, progStats } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const CT_MAX_PATH = '/proc/sys/net/netfilter/nf_conntrack_max';
const dist = (p) => import(join(ROOT, 'dist', p));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const SIZES = String(arg('--sizes', '200000,1000000')).split(',').map(Number).sort((a, b) => a - b);
const ROUNDS = Number(arg('--rounds', 3));
const PORT = 5001;
/** The walk programs (bpftool names them from their BTF, in full); one is loaded at a time. */
const WALK_PROGS = ['ctop_walk_chain_direct', 'ctop_walk_chain'];

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 180_000, maxBuffer: 64 << 20 });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r1 = (x) => Math.round(x * 10) / 10;
const spread = (xs) => ({ median: r1(median(xs)), min: r1(Math.min(...xs)), max: r1(Math.max(...xs)) });
const rotate = (xs, k) => xs.map((_, i) => xs[(i + k) % xs.length]);

const made = [];
function makeNs() {
  const ns = makeTableNs(`ctop-b-walk-${process.pid}`);
  made.push(ns);
  return ns;
}

const VARIANTS = { walk: { census: false, addrs: false }, groups: { census: true, addrs: false }, census: { census: true, addrs: true } };

function walkProgNs() {
  const p = progStats(process.pid);
  return WALK_PROGS.reduce((a, name) => a + (p[name]?.ns ?? 0), 0);
}

async function measure(ns, size) {
  const { loadAddon } = await dist('native/addon.js');
  const { bucketsPerRun } = await dist('source/hashWalk.js');
  const addon = loadAddon();
  const inode = statSync(`/run/netns/${ns}`).ino;
  const buckets = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_buckets', 'utf8').trim());
  const perRun = bucketsPerRun(2 * size, buckets);
  const out = {};
  for (const reads of ['direct', 'probe-read']) {
    const w = new addon.Walker({ maxGroups: 65_536, maxAddrs: 131_072, probeRead: reads === 'probe-read' });
    try {
      const { base } = w.locateOwn();
      const runs = {};
      for (let r = 0; r < ROUNDS; r++) {
        for (const v of rotate(Object.keys(VARIANTS), r)) {
          for (const threads of [1, 0]) {
            const { census, addrs } = VARIANTS[v];
            const ns0 = walkProgNs();
            const t0 = performance.now();
            const res = w.chains(base, buckets, perRun, census, addrs, threads);
            const wallMs = performance.now() - t0;
            const progMs = (walkProgNs() - ns0) / 1e6;
            if (res.directLoads !== (reads === 'direct')) throw new Error(`asked for ${reads}, the walker read ${res.directLoads ? 'direct' : 'probe-read'}`);
            if (census) {
              const counted = w.readCensus(0).find((x) => x.netns === inode)?.census.entries ?? 0;
              if (counted !== size) throw new Error(`${reads} ${v}: counted ${counted} of ${size} entries`);
            }
            if (res.inconsistent !== 0) throw new Error(`${reads} ${v}: ${res.inconsistent} inconsistent buckets`);
            const key = `${v}${threads === 1 ? 'OneThread' : 'AllCpus'}`;
            (runs[key] ??= []).push({ wallMs, progMs, cpuMs: res.cpuMs, threads: res.threads });
          }
        }
      }
      out[reads] = Object.fromEntries(
        Object.entries(runs).map(([k, xs]) => [
          k,
          {
            threads: xs[0].threads,
            wallMs: spread(xs.map((x) => x.wallMs)),
            bpfNsPerEntry: Math.round((median(xs.map((x) => x.progMs)) * 1e6) / size),
            threadCpuNsPerEntry: Math.round((median(xs.map((x) => x.cpuMs)) * 1e6) / size),
          },
        ]),
      );
    } finally {
      w.close();
    }
  }
  return { entries: size, buckets, bucketsPerRun: perRun, reads: out };
}

async function main() {
  if (process.getuid() !== 0) {
    console.error('bench: needs root (network namespaces, BPF)');
    process.exit(2);
  }
  const oldMax = readFileSync(CT_MAX_PATH, 'utf8').trim();
  let restoreStats = () => {};
  const cleanup = () => {
    restoreStats();
    writeFileSync(CT_MAX_PATH, oldMax);
    for (const ns of made.splice(0)) {
      try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
    }
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  writeFileSync(CT_MAX_PATH, String(Math.max(Number(oldMax), SIZES.at(-1) + 100_000)));
  try {
    restoreStats = enableBpfStats();
    const ns = makeNs();
    const results = [];
    let filled = 0;
    for (const size of SIZES) {
      sh('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', String(PORT), '--count', String(size - filled), '--start', String(filled), '--max-ms', '120000']);
      filled = size;
      const count = Number(sh('ip', ['netns', 'exec', ns, 'conntrack', '-C']).trim());
      if (count !== size) throw new Error(`the table holds ${count} entries, expected ${size}`);
      results.push(await measure(ns, size));
      process.stderr.write(`walk at ${size} entries done\n`);
    }
    console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavgAtEnd: loadavg().map(r1), rounds: ROUNDS, sizes: results }, null, 2));
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(1);
});
