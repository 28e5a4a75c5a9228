/** `ctop validate` as text: the verdict, the exempted traffic per direction, the namespace before and after. */
import type { Validation } from '../advise/validate.js';
import type { OccupancyMethod } from '../model/census.js';
import { formatTable } from './table.js';
import { percent } from '../util/text.js';
import { cleanLines } from '../util/sanitize.js';

/** How a window's entries were counted (the `ctop census` machinery). */
export interface WindowCensus {
  occupancy: OccupancyMethod;
  fallbackReason?: string;
  occupancyMs: number;
}

const DIRS = ['prerouting dport', 'prerouting sport', 'output dport', 'output sport'] as const;

export function formatValidation(v: Validation, label: string, census: WindowCensus | undefined): string {
  const out = [`ctop validate in ${label}: ${v.verdict}`];
  for (const t of v.targets) {
    out.push('');
    out.push(`${t.port}: ${t.verdict}; role ${t.role}${t.roleEvidence ? ` (${t.roleEvidence})` : ''}; exempted: ${t.exempted.join(', ')}`);
    out.push(`  new entries/s by requests ${t.before.requestEntriesPerSec} -> ${t.after.requestEntriesPerSec}, by replies ${t.before.replyEntriesPerSec} -> ${t.after.replyEntriesPerSec}${t.entryCut !== null ? `; cut ${percent(t.entryCut)}` : ''}`);
    out.push(
      formatTable(
        ['packets/s', ...DIRS],
        [
          ['before', ...DIRS.map((d) => t.before.packetsPerSec[d] ?? 0)],
          ['after', ...DIRS.map((d) => `${t.after.packetsPerSec[d] ?? 0}${t.exempted.includes(d) ? ' (untracked)' : ''}`)],
        ],
      )
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    if (t.before.entries !== null) out.push(`  entries on these ports: ${t.before.entries} -> ${t.after.entries ?? 'n/a'} (left-over entries time out)`);
    for (const p of t.problems) out.push(`  ${t.verdict}: ${p}`);
  }
  const n = v.namespace;
  out.push('');
  out.push(
    `namespace: inserts/s ${n.before.insertsPerSec} -> ${n.after.insertsPerSec}${n.observedCut !== null ? ` (cut ${percent(n.observedCut)}` : ''}${n.predictedCut !== null ? `, predicted ${percent(n.predictedCut)})` : n.observedCut !== null ? ')' : ''}; entries/s ${n.before.entriesSlopePerSec} -> ${n.after.entriesSlopePerSec}; fill ${percent(n.before.fill)} -> ${percent(n.after.fill)} (${n.after.countEnd} entries)`,
  );
  for (const p of n.problems) out.push(`namespace: FAIL: ${p}`);
  out.push(census ? `entries counted by ${census.occupancy}${census.fallbackReason ? ` (in-kernel count not used: ${census.fallbackReason})` : ''}` : 'entries per port: not counted (--no-census)');
  for (const x of v.notes) out.push(`note: ${x}`);
  return cleanLines(out.join('\n')); // rule text and names in it come from other users
}
