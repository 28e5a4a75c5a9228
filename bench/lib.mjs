// Shared by the benchmarks that read the kernel's own clock on BPF programs
// (kernel.bpf_stats_enabled: per program, a run count and the run time).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export const BPF_STATS_PATH = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * Turns kernel.bpf_stats_enabled on and returns a function that puts back the
 * value it found (idempotent; call it on every way out, signals included).
 * While it is on the kernel reads its clock twice per program run, so every
 * program, the floor's too, pays for it.
 */
export function enableBpfStats() {
  const was = readFileSync(BPF_STATS_PATH, 'utf8').trim();
  writeFileSync(BPF_STATS_PATH, '1');
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    writeFileSync(BPF_STATS_PATH, was);
  };
}

/**
 * run_cnt and run_time_ns of every BPF program process `pid` holds (the
 * prog_id lines of its fdinfo), by program name: { name: { runs, ns } }.
 * By holder, not by name alone: another tool may load a program of the same
 * name.
 */
export function progStats(pid) {
  const ids = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  const out = {};
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', timeout: 60_000 }));
  for (const p of progs) {
    if (ids.has(p.id)) out[p.name] = { runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 };
  }
  return out;
}

/** What the programs ran between two progStats() readings (or the floor's
 * own report, same shape), summed and per program. */
export function progDelta(before, after) {
  const progs = {};
  let runs = 0;
  let ns = 0;
  for (const [name, v] of Object.entries(after)) {
    const r = v.runs - (before[name]?.runs ?? 0);
    const t = v.ns - (before[name]?.ns ?? 0);
    runs += r;
    ns += t;
    if (r > 0) progs[name] = { runs: r, ns: t };
  }
  return { runs, ns, progs };
}

/**
 * A namespace for a benchmark's own conntrack table, as the census benchmarks
 * grow it: lo up with 198.18.0.2, conntrack on by one nft rule (new flows
 * counted), UDP entries kept an hour so that none expires during a run. On a
 * failure part-way the namespace is deleted again before the error is thrown.
 */
export function makeTableNs(ns) {
  const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  sh('ip', ['netns', 'add', ns]);
  try {
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', '198.18.0.2/32', 'dev', 'lo']);
    sh('ip', ['netns', 'exec', ns, 'nft', 'table inet bench { chain out { type filter hook output priority 0; ct state new counter; }; }']);
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=3600']);
  } catch (e) {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    throw e;
  }
  return ns;
}
