/** The options every command that loads the probe shares. */
import { Option, type Command } from 'commander';
import { ROLE_CHOICES } from '../advise/rules.js';
import { parseCount } from '../util/duration.js';
import { TIERS, type Tier } from '../model/sample.js';

export interface ProbeFlags {
  netns?: string;
  tier: string;
  maxPorts: string;
  maxTuples: string;
  maxDropTuples: string;
}

export interface ProbeSettings {
  netns?: string;
  tier: 'auto' | Tier;
  maxPorts: number;
  maxTuples: number;
  maxDropTuples: number;
}

export function addProbeFlags(cmd: Command): Command {
  return cmd
    .option('--netns <name|path>', 'watch one network namespace (an `ip netns` name or /proc/PID/ns/net) instead of all')
    .addOption(new Option('--tier <tier>', 'force a probe tier (for testing)').choices(['auto', ...TIERS]).default('auto'))
    .option('--max-ports <n>', 'per-port map entries (1024-1048576)', '8192')
    .option('--max-tuples <n>', 'tuples of new flows held between reads, all CPUs (1024-4194304)', '16384')
    .option('--max-drop-tuples <n>', 'per-tuple drop map entries (1024-1048576)', '4096');
}

export function parseProbeFlags(f: ProbeFlags): ProbeSettings {
  return {
    netns: f.netns,
    tier: f.tier as 'auto' | Tier,
    maxPorts: parseCount(f.maxPorts, '--max-ports', 1024, 1 << 20),
    maxTuples: parseCount(f.maxTuples, '--max-tuples', 1024, 1 << 22),
    maxDropTuples: parseCount(f.maxDropTuples, '--max-drop-tuples', 1024, 1 << 20),
  };
}

/** --role, shared by advise, notrack apply and validate. */
export const ROLE_HELP =
  'auto: the role the kernel shows for each port (measured); server: a local service on PORT; client: local sockets talk to a remote PORT; local: both ends in this namespace; forward: routed or bridged through it';

export function roleOption(): Option {
  return new Option('--role <role>', ROLE_HELP).choices([...ROLE_CHOICES]).default('auto');
}
