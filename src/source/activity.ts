/**
 * Is conntrack doing anything in the namespaces ctop watches? Entries or
 * any statistic moving prove it; with both at zero, ask the ruleset (a fresh
 * namespace whose rules enable conntrack has seen no packet yet).
 */
import type { Sample } from '../model/sample.js';

export function conntrackBusy(s: Sample): boolean {
  return s.namespaces.some((n) => n.count > 0 || Object.values(n.stats).some((v) => v > 0));
}
