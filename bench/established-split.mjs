#!/usr/bin/env node
// Where ctop's cost on established traffic comes from: packets of one
// existing flow (tools/bin/flood est) with no observer, with only ctop's
// netfilter hooks attached in the namespace, with only its tp_btf/kfree_skb
// program attached (global), and with both (what `ctop` runs). Same probe
// object and loader as the product (the addon), alternating conditions in a
// rotating order, medians and ratios.
//
//   npx tsc -p tsconfig.json && sudo node bench/established-split.mjs [--rounds 5] [--packets 1000000] [--pin 1]
//
// Each run gets a fresh network namespace with conntrack on (one nft rule),
// and floods its loopback (198.18.0.2); nothing leaves the namespace.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const { loadAddon } = await import(join(ROOT, 'dist', 'native', 'addon.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUNDS = arg('--rounds', 5);
const PACKETS = arg('--packets', 1_000_000);
// --pin CPU: run the flood (sender and receiver threads) on one CPU. Unpinned,
// the rate is bimodal on this 2-core VM (about 120-150k or 350k packets/s,
// by where the scheduler puts the two threads), which swamps the effect measured.
const PIN = arg('--pin', -1);
const SETTLE_MS = 1500;

const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 90_000 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const live = new Set();
const cleanup = () => {
  for (const ns of live) {
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* already gone */
    }
  }
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });

let n = 0;
function makeNs() {
  const ns = `ctop-b-est-${process.pid}-${n++}`;
  sh('ip', ['netns', 'add', ns]);
  live.add(ns);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
  sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
  return ns;
}

const addon = loadAddon();
const OPTS = { tier: 'netfilter', maxPorts: 8192, maxTuples: 16384, maxDropTuples: 4096, targetNetns: 0 };

async function run(cond) {
  const t0 = performance.now();
  const ns = makeNs();
  let probe;
  let netns;
  try {
    if (cond !== 'none') {
      probe = new addon.Probe(OPTS);
      if (cond === 'hooks' || cond === 'both') netns = new addon.Netns(`/run/netns/${ns}`, probe.nfProgFd());
      if (cond === 'kfree_skb' || cond === 'both') probe.attachDrops();
    }
    const left = SETTLE_MS - (performance.now() - t0);
    if (left > 0) await sleep(left);
    const pin = PIN >= 0 ? ['taskset', '-c', String(PIN)] : [];
    const out = sh('ip', ['netns', 'exec', ns, ...pin, FLOOD, 'est', '--dst', '198.18.0.2', '--port', '9', '--count', String(PACKETS), '--max-ms', '60000']);
    return JSON.parse(out.trim().split('\n').pop()).pps;
  } finally {
    netns?.close();
    probe?.close();
    sh('ip', ['netns', 'del', ns]);
    live.delete(ns);
  }
}

const CONDS = ['none', 'hooks', 'kfree_skb', 'both'];
const runs = Object.fromEntries(CONDS.map((c) => [c, []]));
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < CONDS.length; i++) {
      const cond = CONDS[(i + r) % CONDS.length];
      runs[cond].push(await run(cond));
    }
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
} finally {
  cleanup();
}
const none = median(runs.none);
const result = {
  packets: PACKETS,
  rounds: ROUNDS,
  pinnedCpu: PIN >= 0 ? PIN : null,
  establishedPps: Object.fromEntries(CONDS.map((c) => [c, Math.round(median(runs[c]))])),
  ratioToNone: Object.fromEntries(CONDS.map((c) => [c, Number((median(runs[c]) / none).toFixed(3))])),
  runs,
};
console.log(JSON.stringify(result, null, 2));
