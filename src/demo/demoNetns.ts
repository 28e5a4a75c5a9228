/**
 * The demo's throwaway network namespace: `ctop-demo-<pid>`, loopback up, the
 * demo range routed to itself, and one nft rule that turns conntrack on there
 * and only there (a `ct` expression registers conntrack's hooks for the
 * namespace it is in; the rule only counts, no verdict changes). Removing the
 * namespace removes the rule, the routes and every entry with it.
 *
 * Removal is synchronous so that it can run from a signal handler and from
 * process 'exit'.
 */
import { readdirSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';
import { nsExec } from '../util/nsExec.js';

const DEMO_PREFIX = 'ctop-demo-';

function run(argv: string[], input?: string): string {
  const [cmd, ...args] = argv as [string, ...string[]];
  return nsExec(cmd, args, { input });
}

/** Kills what runs inside the namespace, then removes it. Never throws. */
export function removeDemoNetns(name: string): void {
  try {
    for (const pid of run(['ip', 'netns', 'pids', name]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // the namespace is already gone
  }
  try {
    run(['ip', 'netns', 'del', name]);
  } catch {
    // already gone
  }
}

/** Demo namespaces left by a ctop that was killed outright (SIGKILL leaves no
 * chance to clean up): their owner pid is no longer running. */
export function removeStaleDemoNetns(dir = '/run/netns'): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^ctop-demo-(\d+)$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its ctop still runs
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    removeDemoNetns(name);
    removed.push(name);
  }
  return removed;
}

/** Creates the namespace; on any failure removes what was made and throws a CtopError. */
export function createDemoNetns(pid = process.pid): string {
  const name = `${DEMO_PREFIX}${pid}`;
  const steps: [string, () => void][] = [
    ['ip netns add', () => run(['ip', 'netns', 'add', name])],
    ['loopback up', () => run(['ip', '-n', name, 'link', 'set', 'lo', 'up'])],
    // replies of the simulated clients go to 198.19.x.y: all of 198.18.0.0/15 is local here
    ['route 198.18.0.0/15', () => run(['ip', '-n', name, 'route', 'add', 'local', '198.18.0.0/15', 'dev', 'lo'])],
    [
      'nft rule',
      () =>
        run(
          ['ip', 'netns', 'exec', name, 'nft', '-f', '-'],
          'table inet ctop_demo {\n  chain out { type filter hook output priority 0; ct state new counter; }\n}\n',
        ),
    ],
  ];
  for (const [what, step] of steps) {
    try {
      step();
    } catch (e) {
      removeDemoNetns(name);
      throw new CtopError(
        `demo: could not set up the namespace ${name} (${what}: ${e instanceof Error ? e.message : String(e)})`,
        'the demo needs iproute2 (`ip`) and nftables (`nft`); `bash scripts/setup.sh` installs them',
        ExitCode.failure,
      );
    }
  }
  return name;
}
