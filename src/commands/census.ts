/** `ctop census`: what the conntrack table holds, and how hard its hash works. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { checkPrivileges } from '../preflight.js';
import { buildCensus } from '../model/census.js';
import { formatCensus } from '../format/censusText.js';
import { takeCensus, type CensusOptions } from '../source/censusSource.js';
import { parseCount, parseDurationMs } from '../util/duration.js';
import { hashWalker, locateForTests } from '../source/hashWalk.js';
import { jsonForTerminal } from '../util/sanitize.js';

export interface CensusFlags {
  netns?: string;
  json?: boolean;
  top: string;
  maxAddrs: string;
  chains: string;
  occupancy: string;
  rateWindow: string;
}

export function parseCensusFlags(f: CensusFlags): CensusOptions {
  const chains = f.chains as 'auto' | 'model';
  return {
    netns: f.netns,
    top: parseCount(f.top, '--top', 0, 1_000_000),
    maxAddrs: parseCount(f.maxAddrs, '--max-addrs', 1, 1 << 22),
    chains,
    occupancy: f.occupancy as 'auto' | 'ctnetlink',
    rateWindowMs: parseDurationMs(f.rateWindow, '--rate-window', 0, 3_600_000),
    // CTOP_TEST_LOCATE=entry|capture: tests force a way of finding the table
    walker: (w) => hashWalker({ ...w, locate: locateForTests() }),
  };
}

export function addCensusFlags(cmd: Command): Command {
  return cmd
    .option('--max-addrs <n>', 'distinct addresses counted before the rest go to overflow (ctnetlink: per namespace and direction; in-kernel walk: all together)', '65536')
    .addOption(new Option('--chains <method>', 'chain lengths: walk the hash in the kernel where it permits, or the model').choices(['auto', 'model']).default('auto'))
    .addOption(new Option('--occupancy <method>', 'count entries during the in-kernel walk where it runs, or from a ctnetlink dump').choices(['auto', 'ctnetlink']).default('auto'))
    .option('--rate-window <time>', 'window for the search_restart / chaintoolong rates', '1s');
}

export function registerCensus(program: Command): void {
  addCensusFlags(
    program
      .command('census')
      .description('what the table holds (namespace, family, protocol, port, state, addresses, memory) and its hash-chain lengths')
      .option('--netns <name|path>', 'one network namespace (an `ip netns` name or /proc/PID/ns/net) instead of all')
      .option('--json', 'print the ctop.census/v1 JSON document')
      .option('--top <n>', 'rows of ports and addresses to show (0: all)', '20'),
  ).action(async (f: CensusFlags) => {
    const o = parseCensusFlags(f);
    checkPrivileges();
    const report = buildCensus(await takeCensus(o));
    process.stdout.write(f.json ? `${jsonForTerminal(report)}\n` : `${formatCensus(report, o.top)}\n`);
  });
}
