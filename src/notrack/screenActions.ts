/**
 * The live screen's NOTRACK actions (tui/notrackPanel.ts NotrackActions):
 * the namespace's ruleset for the safety check, `nft -c` for the dry run,
 * and the same guarded change as `ctop notrack apply` (backup, detached
 * watchdog, atomic load, rollback unless confirmed), confirm and revert.
 * A candidate the safety check marks unsafe is refused here: the screen has
 * no --force (`ctop notrack apply --force` has).
 */
import { existsSync } from 'node:fs';
import type { Candidate } from '../advise/notrack.js';
import type { NamespaceInput } from '../advise/report.js';
import { portText } from '../advise/rules.js';
import type { HelperPresence } from '../model/conntrack.js';
import { readHostFacts, readNetnsFacts } from '../source/ctSettings.js';
import { hostNetnsInode, type NetnsRef } from '../source/netnsScan.js';
import { readRuleset } from '../source/ruleset.js';
import { describeError } from '../errors.js';
import { confirmChange, revertChange, startGuardedChange, target, type GuardedChange, type Target } from './guard.js';
import { nftCheck } from './nft.js';
import { monotonicMs } from './state.js';

/** A namespace's ruleset is read again after this long (rules change while the screen runs). */
const RULESET_TTL_MS = 10_000;

type Status =
  | { kind: 'pending'; port: string; secondsLeft: number }
  | { kind: 'confirmed'; port: string }
  | { kind: 'rolled back'; port: string }
  | { kind: 'reverted' };

export interface ScreenActionsOptions {
  /** The namespaces the screen watches (their paths to enter). */
  refs: () => NetnsRef[];
  stateDir: string;
  confirmWithinMs: number;
}

export function screenNotrackActions(o: ScreenActionsOptions) {
  const cache = new Map<number, { atMs: number; input: NamespaceInput }>();
  const helpers: HelperPresence[] = readHostFacts([]).helpers;
  let change: { t: Target; g: GuardedChange; port: string } | undefined;
  let last: Status | null = null;

  const targetOf = (inode: number): Target => {
    if (inode === hostNetnsInode()) return target(undefined);
    const ref = o.refs().find((r) => r.inode === inode);
    if (!ref) throw new Error(`namespace ${inode} is no longer watched`);
    return target(ref.path);
  };

  return {
    helpers,
    namespace(inode: number): NamespaceInput | undefined {
      const hit = cache.get(inode);
      if (hit && monotonicMs() - hit.atMs < RULESET_TTL_MS) return hit.input;
      const ref = o.refs().find((r) => r.inode === inode);
      if (!ref) return undefined;
      const errors: string[] = [];
      const facts = readNetnsFacts(ref.path, errors);
      const input: NamespaceInput = { inode, ruleset: readRuleset(ref.path), helperAutoAssign: facts.helperAutoAssign, timeoutsS: facts.timeoutsS, errors };
      cache.set(inode, { atMs: monotonicMs(), input });
      return input;
    },
    check(inode: number, script: string): string | null {
      try {
        nftCheck(script, targetOf(inode).netnsPath);
        return null;
      } catch (e) {
        return describeError(e);
      }
    },
    async apply(inode: number, c: Candidate): Promise<void> {
      if (change && existsSync(change.g.paths.pending)) throw new Error(`${change.port} is still waiting for confirm or revert`);
      if (!c.safe) throw new Error(`${portText(c)} is unsafe to exempt (see its flags); \`ctop notrack apply --force\` overrides`);
      const t = targetOf(inode);
      last = null;
      const g = await startGuardedChange(t, o.stateDir, o.confirmWithinMs, c.rules.nft);
      change = { t, g, port: portText(c) };
    },
    async confirm(): Promise<void> {
      if (!change) throw new Error('nothing was applied from this screen');
      await confirmChange(change.t, o.stateDir);
      last = { kind: 'confirmed', port: change.port };
    },
    async revert(): Promise<void> {
      if (!change) throw new Error('nothing was applied from this screen');
      await revertChange(change.t, o.stateDir);
      last = { kind: 'reverted' };
      change = undefined;
    },
    status(): Status | null {
      if (!change) return last;
      const { g, port } = change;
      if (existsSync(g.paths.pending)) return { kind: 'pending', port, secondsLeft: (g.deadlineMonotonicMs - monotonicMs()) / 1000 };
      if (last?.kind === 'confirmed' || existsSync(g.paths.confirmed)) return { kind: 'confirmed', port };
      return { kind: 'rolled back', port };
    },
  };
}
