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

/** The BPF map sizes a user may set: default and range, each stated once for the help text and the check. */
export const MAP_SIZES = {
  maxPorts: { flag: '--max-ports', help: 'per-port hash entries (ports whose per-CPU slot another port owns)', dflt: 8192, min: 1024, max: 1 << 20 },
  maxTuples: { flag: '--max-tuples', help: 'tuples of new flows held between reads, all CPUs', dflt: 16384, min: 1024, max: 1 << 22 },
  maxDropTuples: { flag: '--max-drop-tuples', help: 'per-tuple drop map entries', dflt: 4096, min: 1024, max: 1 << 20 },
} as const;

export function addProbeFlags(cmd: Command): Command {
  cmd
    .option('--netns <name|path>', 'watch one network namespace (an `ip netns` name or /proc/PID/ns/net) instead of all')
    .addOption(new Option('--tier <tier>', 'force a probe tier (for testing)').choices(['auto', ...TIERS]).default('auto'));
  for (const m of Object.values(MAP_SIZES)) cmd.option(`${m.flag} <n>`, `${m.help} (${m.min}-${m.max})`, String(m.dflt));
  return cmd;
}

export function parseProbeFlags(f: ProbeFlags): ProbeSettings {
  const size = (k: keyof typeof MAP_SIZES): number => parseCount(f[k], MAP_SIZES[k].flag, MAP_SIZES[k].min, MAP_SIZES[k].max);
  return {
    netns: f.netns,
    tier: f.tier as 'auto' | Tier,
    maxPorts: size('maxPorts'),
    maxTuples: size('maxTuples'),
    maxDropTuples: size('maxDropTuples'),
  };
}

/** --role, shared by advise, notrack apply and validate. */
export const ROLE_HELP =
  'auto: the role the kernel shows for each port (measured); server: a local service on PORT; client: local sockets talk to a remote PORT; local: both ends in this namespace; forward: routed or bridged through it';

export function roleOption(): Option {
  return new Option('--role <role>', ROLE_HELP).choices([...ROLE_CHOICES]).default('auto');
}
