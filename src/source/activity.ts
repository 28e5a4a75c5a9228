/**
 * Is conntrack doing anything in the namespaces ctop watches? Entries or
 * any statistic moving prove it; with both at zero, ask the ruleset (a fresh
 * namespace whose rules enable conntrack has seen no packet yet).
 */
import { CtopError, ExitCode } from '../errors.js';
import { keepsConntrackOn } from '../model/ruleset.js';
import type { Sample } from '../model/sample.js';
import type { NetnsRef } from './netnsScan.js';
import { readRuleset } from './ruleset.js';

function conntrackBusy(s: Sample): boolean {
  return s.namespaces.some((n) => n.count > 0 || Object.values(n.stats).some((v) => v > 0));
}

/** Refuses (exit 5) when conntrack is idle in every watched namespace and no rule there would turn it on. */
export function requireConntrackActive(first: Sample, watched: readonly NetnsRef[], nothingTo: string): void {
  if (conntrackBusy(first) || watched.some((r) => keepsConntrackOn(readRuleset(r.path).users))) return;
  throw new CtopError(
    `conntrack is not active in the ${first.namespaces.length} network namespace(s) ctop watches: no entries, no statistics, no rule that uses it`,
    `nothing to ${nothingTo} here; ctop never turns conntrack on itself (\`ctop doctor\` shows what would)`,
    ExitCode.conntrackInactive,
  );
}
