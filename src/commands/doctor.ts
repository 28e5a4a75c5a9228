/**
 * `ctop doctor`: what this kernel offers, which probes attach (and the
 * kernel's own words for those that do not), whether conntrack is active in
 * each namespace and which rules keep it on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Command } from 'commander';
import { btfPath, btfProblem, checkPrivileges } from '../preflight.js';
import { KernelSource, hostName } from '../source/kernelSource.js';
import type { ProbeInfo } from '../model/sample.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags, type ProbeSettings } from './probeFlags.js';
import { readRuleset } from '../source/ruleset.js';
import { keepsConntrackOn, summarize, type ConntrackUser } from '../model/ruleset.js';
import { formatTable } from '../format/table.js';
import { onTermination } from '../util/signals.js';
import { jsonForTerminal, cleanLines } from '../util/sanitize.js';

export interface DoctorOptions extends ProbeSettings {
  json: boolean;
}

export interface DoctorNamespace {
  inode: number;
  name: string;
  entries: number;
  /** entries, or any conntrack statistic above zero */
  busy: boolean;
  keepsConntrackOn: boolean;
  users: ConntrackUser[];
  rulesetErrors: string[];
}

export interface DoctorReport {
  schema: 'ctop.doctor/v1';
  host: string;
  kernel: { release: string; btf: string | null; lockdown: string | null };
  probe: ProbeInfo;
  sysctl: { max: number; buckets: number };
  conntrackActive: boolean;
  namespaces: DoctorNamespace[];
  notWatched: { name: string; error: string }[];
}

function lockdown(): string | null {
  // "none [integrity] confidentiality": the bracketed word is in force.
  const p = '/sys/kernel/security/lockdown';
  if (!existsSync(p)) return null;
  const m = /\[(\w+)\]/.exec(readFileSync(p, 'utf8'));
  return m?.[1] ?? null;
}

export function buildDoctorReport(source: KernelSource): DoctorReport {
  const s = source.sample();
  const refs = new Map(source.watchedRefs().map((r) => [r.inode, r]));
  const namespaces: DoctorNamespace[] = s.namespaces.map((n) => {
    const ref = refs.get(n.inode);
    const rs = ref ? readRuleset(ref.path) : { users: [], chains: [], sources: [], errors: ['namespace vanished'] };
    return {
      inode: n.inode,
      name: n.name,
      entries: n.count,
      busy: n.count > 0 || Object.values(n.stats).some((v) => v > 0),
      keepsConntrackOn: keepsConntrackOn(rs.users),
      users: rs.users,
      rulesetErrors: rs.errors,
    };
  });
  return {
    schema: 'ctop.doctor/v1',
    host: hostName(),
    kernel: { release: release(), btf: btfProblem() ? null : btfPath(), lockdown: lockdown() },
    probe: s.probe,
    sysctl: { max: s.max, buckets: s.buckets },
    conntrackActive: namespaces.some((n) => n.busy || n.keepsConntrackOn),
    namespaces,
    notWatched: s.netnsErrors,
  };
}

export function formatDoctor(r: DoctorReport): string {
  const out: string[] = [];
  out.push(`ctop doctor  ${r.host}  kernel ${r.kernel.release}`);
  out.push(`BTF: ${r.kernel.btf ?? 'missing (BPF tiers unavailable)'}   lockdown: ${r.kernel.lockdown ?? 'unknown'}`);
  out.push(`net.netfilter.nf_conntrack_max ${r.sysctl.max}   nf_conntrack_buckets ${r.sysctl.buckets}`);
  out.push('');
  out.push(`probe tier in use: ${r.probe.tier}`);
  for (const p of r.probe.programs) {
    out.push(`  ${p.attached ? 'attached' : 'NOT attached'}  ${p.name}  ${p.hook}${p.error ? `: ${p.error}` : ''}`);
  }
  for (const x of r.probe.refused) out.push(`  refused  tier ${x.tier}: ${x.reason}`);
  if (r.probe.tier === 'stats') out.push('  statistics only: per-port and per-tuple counts are unavailable');
  out.push('');
  out.push(`conntrack active: ${r.conntrackActive ? 'yes' : 'no (ctop never turns it on)'}`);
  out.push(
    formatTable(
      ['namespace', 'inode', 'entries', 'busy', 'kept on by rules'],
      r.namespaces.map((n) => [n.name, String(n.inode), n.entries, n.busy ? 'yes' : 'no', n.keepsConntrackOn ? 'yes' : 'no']),
    ),
  );
  for (const n of r.namespaces) {
    if (n.users.length === 0 && n.rulesetErrors.length === 0) continue;
    out.push('');
    out.push(`rules in ${n.name} that use conntrack:`);
    for (const line of summarize(n.users)) out.push(`  ${line}`);
    for (const e of n.rulesetErrors) out.push(`  (could not read: ${e})`);
  }
  for (const e of r.notWatched) out.push(`not watched: ${e.name}: ${e.error}`);
  return cleanLines(out.join('\n')); // names in it come from other users
}

export async function runDoctor(o: DoctorOptions): Promise<void> {
  checkPrivileges();
  const source = new KernelSource({ ...o, rescanMs: 60_000 });
  const stopListening = onTermination(() => source.close());
  try {
    await source.start();
    const report = buildDoctorReport(source);
    process.stdout.write(o.json ? `${jsonForTerminal(report)}\n` : `${formatDoctor(report)}\n`);
  } finally {
    source.close();
    stopListening();
  }
}

export function registerDoctor(program: Command): void {
  addProbeFlags(
    program
      .command('doctor')
      .description('what this kernel offers, which probes attach and why others do not, what keeps conntrack on')
      .option('--json', 'print JSON'),
  ).action((opts: ProbeFlags & { json?: boolean }) => runDoctor({ ...parseProbeFlags(opts), json: opts.json === true }));
}
