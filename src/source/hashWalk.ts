/** The in-kernel walk of the conntrack hash (bpf/ctop.bpf.c walk programs). */
import type { WalkResult } from '../model/census.js';

export function hashWalker(_hashEntries: number): { result: WalkResult | null; reason?: string } {
  return { result: null, reason: 'not implemented yet' };
}
