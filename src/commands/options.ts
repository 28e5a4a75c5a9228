/**
 * The options several commands share, each defined once: its flag, its help
 * text, its default and the check of its value. The check is the option's
 * argParser, so a command's action receives checked values, a bad value fails
 * (`ctop: --flag: ...`, exit 2) before anything is loaded, and a range shown
 * in --help is the range checked. What differs between commands (what a
 * duration measures, which JSON document, how far --top may go) is a
 * parameter, never a second definition.
 */
import { Option, type Command } from 'commander';
import { CtopError, ExitCode } from '../errors.js';
import type { L4 } from '../model/conntrack.js';
import { DEFAULT_BUDGET_SHARE } from '../model/occupancy.js';
import { ROLE_CHOICES, type RoleChoice } from '../model/roles.js';
import { TIERS, type Tier } from '../model/sample.js';
import { DEFAULT_STATE_DIR } from '../notrack/stateDir.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { oneLine } from '../util/text.js';

/** `new Option(flags, help)` whose value is checked by `check(text, '--flag')`; its default is the checked `dflt`, shown as written. */
function checked<T>(flags: string, help: string, dflt: string | undefined, check: (text: string, flag: string) => T): Option {
  const o = new Option(flags, help);
  const flag = o.long ?? o.short ?? flags;
  o.argParser((text: string) => check(text, flag));
  if (dflt !== undefined) o.default(check(dflt, flag), JSON.stringify(dflt));
  return o;
}

/** A duration ("500ms", "5s", "2m", "1h", or bare seconds), given to the action in milliseconds. */
export function durationOption(flags: string, help: string, dflt: string, range: { minMs: number; maxMs: number }): Option {
  return checked(flags, help, dflt, (text, flag) => parseDurationMs(text, flag, range.minMs, range.maxMs));
}

/** A whole number within [min, max]. */
export function countOption(flags: string, help: string, dflt: string, range: { min: number; max: number }): Option {
  return checked(flags, help, dflt, (text, flag) => parseCount(text, flag, range.min, range.max));
}

/** -d, --duration <time>: how long a command measures. */
export function durationFlag(help: string, dflt: string, range: { minMs: number; maxMs: number }): Option {
  return durationOption('-d, --duration <time>', help, dflt, range);
}

/** --top <n>: rows kept or shown. */
export function topOption(help: string, dflt: string, range: { min: number; max: number }): Option {
  return countOption('--top <n>', help, dflt, range);
}

/** --json: print the command's JSON document instead of text. */
export function jsonOption(document: string): Option {
  return new Option('--json', `print the ${document} JSON document`);
}

/** --replay <file>: read a recording instead of the kernel; `what` says what the command does with it. */
export function replayOption(what: string): Option {
  return new Option('--replay <file>', `${what}; needs no root`);
}

/** --netns <name|path>: one network namespace; `lead` says what the command does in it, `tail` what it does otherwise. */
export function netnsOption(lead: string, tail = ''): Option {
  return new Option('--netns <name|path>', `${lead} (an \`ip netns\` name or /proc/PID/ns/net)${tail}`);
}

/** --role: which directions a NOTRACK exemption covers (advise, notrack apply, validate). */
export function roleOption(): Option {
  return new Option(
    '--role <role>',
    'auto: the role the kernel shows for each port (measured); server: a local service on PORT; client: local sockets talk to a remote PORT; local: both ends in this namespace; forward: routed or bridged through it',
  )
    .choices([...ROLE_CHOICES])
    .default('auto' satisfies RoleChoice);
}

/** --proto: the protocol of a bare PORT (notrack apply and revert, validate); the port parser defaults it to udp. */
export function protoOption(): Option {
  return new Option('--proto <proto>', 'protocol of bare ports (default udp)').choices(['udp', 'tcp'] satisfies L4[]);
}

/** --state-dir: where NOTRACK backups and the pending record live; `help` says whose. */
export function stateDirOption(help = 'where backups and the pending record live'): Option {
  return new Option('--state-dir <dir>', help).default(DEFAULT_STATE_DIR);
}

/** --confirm-within: how long a NOTRACK change waits for `confirm` before it rolls back. */
export function confirmWithinOption(help: string, dflt: string): Option {
  return durationOption('--confirm-within <time>', help, dflt, { minMs: 1000, maxMs: 3_600_000 });
}

/** How a census counts: the in-kernel hash walk (falls back to a ctnetlink dump), a ctnetlink dump, or (where `off` is offered) none. */
export type OccupancyChoice = 'auto' | 'ctnetlink' | 'off';

/** --occupancy <method>: `methods` are the choices this command offers. */
export function occupancyOption(help: string, methods: readonly OccupancyChoice[]): Option {
  return new Option('--occupancy <method>', help).choices([...methods]).default('auto');
}

/** --occupancy of a command that counts the table once (census, advise --census, validate): the walk or a dump, never off. */
export function censusMethodOption(): Option {
  return occupancyOption('census method: count during the in-kernel walk where it runs, or from a ctnetlink dump', ['auto', 'ctnetlink']);
}

/** The probe's options (every command that loads the BPF programs). */
export interface ProbeSettings {
  /** --netns NAME|PATH; undefined watches every namespace */
  netns?: string;
  tier: 'auto' | Tier;
  maxPorts: number;
  maxTuples: number;
  maxDropTuples: number;
}

/** The BPF map sizes a user may set: default (bpf/ctop.h's) and range, each stated once for the help text and the check. */
export const MAP_SIZES = {
  maxPorts: { flag: '--max-ports', help: 'per-port hash entries (ports whose per-CPU slot another port owns)', dflt: 8192, min: 1024, max: 1 << 20 },
  maxTuples: { flag: '--max-tuples', help: 'tuples of new flows held between reads, all CPUs', dflt: 16384, min: 1024, max: 1 << 22 },
  maxDropTuples: { flag: '--max-drop-tuples', help: 'per-tuple drop map entries', dflt: 4096, min: 1024, max: 1 << 20 },
} as const;

export function addProbeOptions(cmd: Command): Command {
  cmd
    .addOption(netnsOption('watch one network namespace', ' instead of all'))
    .addOption(new Option('--tier <tier>', 'force a probe tier (for testing)').choices(['auto', ...TIERS]).default('auto'));
  for (const m of Object.values(MAP_SIZES)) cmd.addOption(countOption(`${m.flag} <n>`, `${m.help} (${m.min}-${m.max})`, String(m.dflt), m));
  return cmd;
}

/** The probe's settings out of a command's parsed options. */
export function probeSettings(f: ProbeSettings): ProbeSettings {
  return { netns: f.netns, tier: f.tier, maxPorts: f.maxPorts, maxTuples: f.maxTuples, maxDropTuples: f.maxDropTuples };
}

/** The background census's options (top, record, serve). */
export interface OccupancySettings {
  /** how the background census counts; 'off' runs none */
  occupancy: OccupancyChoice;
  /** CPU share of one core the census may use, 0..1 */
  budgetShare: number;
}

function parseBudgetShare(text: string, flag: string): number {
  const t = text.trim().replace(/%$/, '');
  const pct = /^\d+(\.\d+)?$/.test(t) ? Number(t) : Number.NaN;
  if (!(pct >= 0.1 && pct <= 50)) {
    throw new CtopError(`${flag}: '${oneLine(text, 40)}' is not a percentage from 0.1 to 50`, `e.g. ${flag} 2 (2 % of one core, the default)`, ExitCode.usage);
  }
  return pct / 100;
}

export function addOccupancyOptions(cmd: Command): Command {
  return cmd
    .addOption(occupancyOption('who holds the table: a background census by the in-kernel hash walk (auto, falls back to ctnetlink), ctnetlink dumps, or off', ['auto', 'ctnetlink', 'off']))
    .addOption(checked('--census-budget <percent>', 'CPU the background census may use, percent of one core (0.1-50)', String(DEFAULT_BUDGET_SHARE * 100), parseBudgetShare));
}

/** The background census's settings out of a command's parsed options (--census-budget is the share, 0..1). */
export function occupancySettings(f: { occupancy: OccupancyChoice; censusBudget: number }): OccupancySettings {
  return { occupancy: f.occupancy, budgetShare: f.censusBudget };
}
