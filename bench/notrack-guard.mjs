#!/usr/bin/env node
// What the guarded NOTRACK change costs and how promptly it rolls back
// (issue 6), in a namespace the benchmark creates:
//   - apply latency: `ctop notrack apply --yes` from start to "applied"
//     (ruleset read and safety check, nft -c, backup, watchdog start, nft -f);
//   - rollback lag: from the confirmation deadline to the ruleset being back
//     byte for byte, with ctop waiting and with ctop SIGKILLed after applying;
//   - the census `ctop advise --census` / `ctop validate` take over N entries
//     (readPortCensus, the `ctop census` machinery, in-process): the in-kernel
//     hash walk and the ctnetlink-dump fallback; and, for comparison, the old
//     path, `conntrack -L` text for both families (no parsing).
//
//   sudo node bench/notrack-guard.mjs [--rounds 5] [--entries 100000] [--census-only]
//
// Traffic stays inside the namespace (198.18.0.2 on its loopback, sources in
// 198.19.0.0/16 from tools/bin/flood). The namespace is deleted at the end.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CTOP = join(ROOT, 'bin', 'ctop');
const FLOOD = join(ROOT, 'tools', 'bin', 'flood');
const { readPortCensus } = await import(join(ROOT, 'dist', 'source', 'portCensusSource.js'));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUNDS = arg('--rounds', 5);
const ENTRIES = arg('--entries', 100_000);
const CONFIRM_MS = 2000;
const CENSUS_ONLY = process.argv.includes('--census-only');

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 30, ...opts });
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ns = `ctop-nb-${process.pid}`;
const stateDir = mkdtempSync(join(tmpdir(), 'ctop-nb-'));
const cleanup = () => {
  try { sh('ip', ['netns', 'del', ns]); } catch { /* gone */ }
  rmSync(stateDir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

sh('ip', ['netns', 'add', ns]);
sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
const ruleset = () => sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset']);

/** One guarded apply; returns apply latency and rollback lag (ms). */
async function once(kill) {
  const before = ruleset();
  const t0 = performance.now();
  const p = spawn(process.execPath, [CTOP, 'notrack', 'apply', 'udp/9', '--netns', ns, '--state-dir', stateDir, '--yes', '--confirm-within', `${CONFIRM_MS / 1000}s`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise((resolve, reject) => {
    p.stderr.on('data', (d) => {
      err += d;
      if (/applied in/.test(err)) resolve();
    });
    p.on('close', () => reject(new Error(`apply ended early: ${err}`)));
  });
  const applyMs = performance.now() - t0;
  const pendingFile = readdirSync(stateDir).find((f) => f.endsWith('.pending.json'));
  const { deadlineMs } = JSON.parse(readFileSync(join(stateDir, pendingFile), 'utf8'));
  if (ruleset() === before) throw new Error('the change did not show');
  if (kill) p.kill('SIGKILL');
  while (Date.now() < deadlineMs) await sleep(5);
  let lagMs = -1;
  while (Date.now() < deadlineMs + 10_000) {
    if (ruleset() === before) {
      lagMs = Date.now() - deadlineMs;
      break;
    }
    await sleep(5);
  }
  if (lagMs < 0) throw new Error('no rollback within 10 s of the deadline');
  await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.on('close', r)));
  return { applyMs, lagMs };
}

const waiting = [];
const killed = [];
for (let r = 0; r < (CENSUS_ONLY ? 0 : ROUNDS); r++) {
  waiting.push(await once(false));
  killed.push(await once(true));
}

// Census: fill the namespace's table, then count it as advise does (both methods), and the old text dump.
const flood = JSON.parse(sh('ip', ['netns', 'exec', ns, FLOOD, 'new', '--dst', '198.18.0.2', '--port', '9', '--count', String(ENTRIES), '--max-ms', '60000'], { timeout: 90_000 }).trim().split('\n').pop());
const count = Number(sh('ip', ['netns', 'exec', ns, 'conntrack', '-C']).trim());
const nsInode = Number(sh('stat', ['-L', '-c', '%i', `/run/netns/${ns}`]).trim());
const census = { auto: [], ctnetlink: [] };
const methods = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const occupancy of ['auto', 'ctnetlink']) {
    const t0 = performance.now();
    const run = await readPortCensus({ netns: ns, occupancy });
    census[occupancy].push(performance.now() - t0);
    methods[occupancy] = run.occupancy + (run.fallbackReason ? ` (fallback: ${run.fallbackReason})` : '');
    const total = run.byNetns.get(nsInode)?.total ?? 0;
    if (total !== count) console.error(`note: ${run.occupancy} census saw ${total} entries, conntrack -C ${count}`);
  }
}
const textMs = [];
let bytes = 0;
let lines = 0;
for (let r = 0; r < ROUNDS; r++) {
  const t0 = performance.now();
  const text = ['ipv4', 'ipv6'].map((f) => sh('ip', ['netns', 'exec', ns, 'conntrack', '-L', '-f', f], { stdio: ['ignore', 'pipe', 'ignore'] })).join('\n');
  textMs.push(performance.now() - t0);
  bytes = text.length;
  lines = text.split('\n').filter((l) => l.trim()).length;
}

const fmt = (s) => `median ${s.median.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`;
console.log(`rounds ${ROUNDS}, confirm window ${CONFIRM_MS} ms`);
if (!CENSUS_ONLY) {
  console.log(`apply latency (ctop waiting):      ${fmt(stats(waiting.map((x) => x.applyMs)))}`);
  console.log(`rollback lag after the deadline:   ${fmt(stats(waiting.map((x) => x.lagMs)))}`);
  console.log(`rollback lag, ctop SIGKILLed:      ${fmt(stats(killed.map((x) => x.lagMs)))}`);
}
console.log(`census of ${count} entries (flood sent ${flood.sent}):`);
console.log(`  --occupancy auto      -> ${methods.auto}: ${fmt(stats(census.auto))}`);
console.log(`  --occupancy ctnetlink -> ${methods.ctnetlink}: ${fmt(stats(census.ctnetlink))}`);
console.log(`  conntrack -L text (old path, not parsed): ${fmt(stats(textMs))}, ${lines} lines, ${(bytes / 1048576).toFixed(1)} MiB`);
