/**
 * What `ctop census` starts before commander and its modules load (cli.ts):
 * the walk programs and the table, on a native thread (source/walkStart.ts).
 * The options are not parsed yet, so this reads the few that decide the load
 * straight from argv; a value it cannot read skips the early start, and one
 * that differs from what the census then parses only costs a second load
 * (the census checks the map sizes before it takes the programs over).
 */
import { DEFAULT_MAX_ADDRS, startWalk } from '../source/walkStart.js';

/** The value of `--name v` or `--name=v` (the last one given, as commander takes it). */
function optionValue(argv: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === name) v = argv[++i];
    else if (a.startsWith(`${name}=`)) v = a.slice(name.length + 1);
  }
  return v;
}

/** argv after `census`'s position is the command's; help or a walk the options rule out starts nothing. */
export function startCensusEarly(argv: readonly string[]): void {
  if (argv.some((a) => a === '-h' || a === '--help')) return;
  const chains = optionValue(argv, '--chains') ?? 'auto';
  const occupancy = optionValue(argv, '--occupancy') ?? 'auto';
  if (chains === 'model' && occupancy === 'ctnetlink') return; // no walk at all
  const addrs = optionValue(argv, '--max-addrs');
  if (addrs !== undefined && !/^\d+$/.test(addrs)) return;
  // tests force a way of finding the table and a walk (hashWalk.ts locateForTests, probeReadForTests, rewalkAllForTests)
  startWalk({
    maxAddrs: addrs === undefined ? DEFAULT_MAX_ADDRS : Number(addrs),
    locateOwn: process.env.CTOP_TEST_LOCATE !== 'capture',
    probeRead: process.env.CTOP_TEST_READS === 'probe-read',
    rewalkAll: process.env.CTOP_TEST_REWALK === 'all',
  });
}
