/** `ctop doctor` as text: the kernel, the probe tier and its programs, conntrack per namespace, the rules that keep it on. */
import type { DoctorReport } from '../model/doctor.js';
import { summarize } from '../model/ruleset.js';
import { cleanLines } from '../util/sanitize.js';
import { formatTable } from './table.js';

export function formatDoctor(r: DoctorReport): string {
  const out: string[] = [];
  out.push(`ctop doctor  ${r.host}  kernel ${r.kernel.release}`);
  out.push(`BTF: ${r.kernel.btf ?? 'missing (BPF tiers unavailable)'}   lockdown: ${r.kernel.lockdown ?? 'unknown'}`);
  out.push(`net.netfilter.nf_conntrack_max ${r.sysctl.max}   nf_conntrack_buckets ${r.sysctl.buckets}`);
  out.push('');
  out.push(`probe tier in use: ${r.probe.tier}`);
  for (const p of r.probe.programs) {
    out.push(`  ${p.attached ? 'attached' : 'NOT attached'}  ${p.name}  ${p.hook}${p.error ? `: ${p.error}` : ''}`);
    if (p.skippedRuns) out.push(`    skipped ${p.skippedRuns} runs: already running on that CPU when a softirq needed it; those events are not counted`);
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
