/** `ctop census`: what the conntrack table holds, and how hard its hash works. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { checkPrivileges } from '../preflight.js';
import { buildCensus } from '../model/census.js';
import { formatCensus } from '../format/censusText.js';
import { takeCensus, type CensusOptions } from '../source/censusSource.js';
import { hashWalker, locateForTests } from '../source/hashWalk.js';
import { jsonForTerminal } from '../util/sanitize.js';
import { DEFAULT_MAX_ADDRS } from '../source/walkStart.js';
import { censusMethodOption, countOption, durationOption, jsonOption, netnsOption, topOption } from './options.js';

/** The command's options, checked (./options.ts). */
interface CensusFlags {
  netns?: string;
  json?: boolean;
  top: number;
  maxAddrs: number;
  chains: 'auto' | 'model';
  occupancy: 'auto' | 'ctnetlink';
  rateWindow: number;
  walkThreads: number;
}

function censusOptions(f: CensusFlags): CensusOptions {
  return {
    netns: f.netns,
    top: f.top,
    maxAddrs: f.maxAddrs,
    chains: f.chains,
    occupancy: f.occupancy,
    rateWindowMs: f.rateWindow,
    walkThreads: f.walkThreads,
    // CTOP_TEST_LOCATE=entry|capture: tests force a way of finding the table
    walker: (w) => hashWalker({ ...w, locate: locateForTests() }),
  };
}

export function registerCensus(program: Command): void {
  program
    .command('census')
    .description('what the table holds (namespace, family, protocol, port, state, addresses, memory) and its hash-chain lengths')
    .addOption(netnsOption('count one network namespace', ' instead of all'))
    .addOption(jsonOption('ctop.census/v1'))
    .addOption(topOption('rows of ports and addresses to show (0: all)', '20', { min: 0, max: 1_000_000 }))
    .addOption(countOption('--max-addrs <n>', 'distinct addresses counted before the rest go to overflow (ctnetlink: per namespace and direction; in-kernel walk: all together)', String(DEFAULT_MAX_ADDRS), { min: 1, max: 1 << 22 }))
    .addOption(new Option('--chains <method>', 'chain lengths: walk the hash in the kernel where it permits, or the model').choices(['auto', 'model']).default('auto'))
    .addOption(censusMethodOption())
    .addOption(durationOption('--rate-window <time>', 'window for the search_restart / chaintoolong rates', '1s', { minMs: 0, maxMs: 3_600_000 }))
    .addOption(countOption('--walk-threads <n>', 'threads (CPUs) the in-kernel walk runs on at once (0: every online CPU; 1 leaves the other CPUs to traffic)', '0', { min: 0, max: 16 }))
    .action(async (f: CensusFlags) => {
      const o = censusOptions(f);
      checkPrivileges();
      const report = buildCensus(await takeCensus(o));
      process.stdout.write(f.json ? `${jsonForTerminal(report)}\n` : `${formatCensus(report, o.top)}\n`);
    });
}
