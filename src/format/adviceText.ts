/** `ctop advise` as text: per namespace, candidates, rules, what keeps conntrack on, sizing. */
import type { AdviceReport, NamespaceAdvice } from '../advise/report.js';
import { portText } from '../advise/rules.js';
import { formatTable } from './table.js';
import { mib, percent } from '../util/text.js';
import { cleanLines } from '../util/sanitize.js';

function indent(text: string, by = '    '): string[] {
  return text.trimEnd().split('\n').map((l) => `${by}${l}`);
}

function namespaceText(n: NamespaceAdvice): string[] {
  const out: string[] = [];
  const a = n.notrack;
  out.push(`== ${n.name} (netns ${n.inode}), ${n.entries} entries`);
  out.push(`NOTRACK candidates (role ${a.role === 'auto' ? 'auto: as the kernel saw each port' : `${a.role}, forced`}); ${a.census.note}`);
  if (a.candidates.length === 0) out.push('  no tcp/udp inserts in the window');
  else {
    out.push(
      formatTable(
        ['#', 'port', 'role', 'inserts/s', 'insert share', 'occupancy', 'safe', 'fill now', 'fill after'],
        a.candidates.map((c, i) => [
          i + 1,
          portText(c),
          c.role,
          c.insertsPerSec,
          percent(c.insertShare),
          c.occupancy ? `${c.occupancy.entries} (${percent(c.occupancy.share)})` : 'n/a',
          c.safe ? 'yes' : 'NO',
          percent(c.fillAfter.fillNow),
          `${percent(c.fillAfter.fillAfter)} (${c.fillAfter.method})`,
        ]),
      ).split('\n').map((l) => `  ${l}`).join('\n'),
    );
  }
  for (const [i, c] of a.candidates.entries()) {
    out.push('');
    out.push(`  #${i + 1} ${portText(c)}: ${c.safe ? 'no blocker found' : 'UNSAFE to exempt'}`);
    out.push(`    role ${c.role}: ${c.roleEvidence.evidence}`);
    for (const f of c.flags) out.push(`    ${f.severity}: ${f.reason}${f.rule ? `\n      rule: ${f.rule}` : ''}`);
    out.push('    nft (ctop notrack apply writes this table):');
    out.push(...indent(c.rules.nft, '      '));
    out.push('    iptables-nft:');
    out.push(...c.rules.iptablesNft.map((l) => `      ${l}`));
    out.push('    iptables-legacy:');
    out.push(...c.rules.iptablesLegacy.map((l) => `      ${l}`));
    if (c.untrackedAccepts.length > 0) {
      out.push('    accept untracked packets in your drop-policy chains:');
      out.push(...c.untrackedAccepts.map((x) => `      ${x.command}`));
    }
  }
  if (a.allSafe) {
    out.push('');
    out.push(`  all safe candidates (${a.allSafe.ports.join(', ')}): fill ${percent(a.allSafe.fillAfter.fillNow)} -> ${percent(a.allSafe.fillAfter.fillAfter)} once their entries time out`);
    out.push(`    ctop notrack apply ${a.allSafe.ports.join(' ')} --role ${a.role}   (a dry run; --yes applies, then \`ctop notrack confirm\`)`);
    out.push(`    ctop validate --port ${a.allSafe.ports.join(' ')} --role ${a.role}   (proves it on the live traffic, namespace-wide)`);
  }
  out.push('');
  out.push(`what keeps conntrack on: ${n.keepsOn.keptOnByRules ? 'these rules' : 'no rule'}`);
  for (const r of n.keepsOn.rules) out.push(`  ${r}`);
  for (const f of n.keepsOn.features) out.push(`  kernel feature: ${f}`);
  if (n.keepsOn.warning) out.push(`  WARNING: ${n.keepsOn.warning}`);
  const z = n.sizing;
  out.push('');
  out.push('sizing:');
  out.push(`  now: nf_conntrack_max ${z.current.max}, buckets ${z.current.buckets}, ${z.current.count} entries (${percent(z.current.fillRatio)}), ${z.current.entriesPerBucket} per bucket`);
  out.push(`  RAM formula maximum (RAM/16384/(word/32)): ${z.theoreticalMax}`);
  if (z.kernelDefaults) out.push(`  this kernel's boot default (${z.kernelDefaults.rule} rule): max ${z.kernelDefaults.max}, buckets ${z.kernelDefaults.buckets}`);
  out.push(`  recommended: max ${z.recommended.max}, buckets ${z.recommended.buckets} (range max/8..max/2 = ${z.recommended.bucketRange[0]}..${z.recommended.bucketRange[1]}): ${z.recommended.reason}`);
  out.push(`  memory at max (${z.memory.entryBytes} B/entry from slab, ${z.memory.bucketBytes} B/bucket): now ${mib(z.memory.currentBytes)}, recommended ${mib(z.memory.recommendedBytes)}`);
  for (const t of z.timeouts) {
    out.push(`  ${t.sysctl}: ${t.currentS}s -> ${t.suggestedS}s${t.wouldFree !== null ? `, frees ${t.wouldFreeAtMost !== undefined && t.wouldFreeAtMost !== t.wouldFree ? `${t.wouldFree} to ${t.wouldFreeAtMost}` : t.wouldFree} of ${t.entries} entries now` : t.entries !== null ? ` (${t.entries} entries now; entries freed: ${t.wouldFreeUnavailable ?? 'not available'})` : ' (entries freed: needs --census)'}`);
  }
  out.push('  sysctl.d file:');
  out.push(...indent(z.sysctlDFile));
  out.push(`  hash size: ${z.hashsize.sysfs}`);
  out.push(`             ${z.hashsize.modprobe}`);
  for (const e of n.errors) out.push(`  (could not read: ${e})`);
  return out;
}

export function formatAdvice(r: AdviceReport): string {
  const out = [`ctop advise  ${r.host}  kernel ${r.kernel}  window ${(r.durationMs / 1000).toFixed(1)} s`];
  if (r.census) {
    const c = r.census;
    out.push(`census: ${c.occupancy} in ${c.occupancyMs} ms${c.fallbackReason ? ` (in-kernel count not used: ${c.fallbackReason})` : ''}; seconds left per TCP state: ${c.remainingByState === 'histogram' ? 'histogram, 4 slots per power of two (freed entries given as a range)' : 'not available'}`);
  }
  if (r.namespaces.length === 0) out.push('no namespace with conntrack activity in the window');
  for (const n of r.namespaces) out.push('', ...namespaceText(n));
  for (const e of r.errors) out.push(`not watched: ${e}`);
  return cleanLines(out.join('\n')); // names in it come from other users
}
