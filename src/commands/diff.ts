/** `ctop diff A B`: what changed between two snapshots or recordings. */
import type { Command } from 'commander';
import { readWindows } from '../io/recording.js';
import { diffSummaries } from '../model/diff.js';
import { summarize } from '../model/series.js';
import { formatDiff } from '../format/diffText.js';
import { jsonForTerminal } from '../util/sanitize.js';
import { jsonOption } from './options.js';

function runDiff(o: { a: string; b: string; json: boolean }): void {
  const a = summarize(readWindows(o.a).snapshots);
  const b = summarize(readWindows(o.b).snapshots);
  const d = diffSummaries(o.a, a, o.b, b);
  process.stdout.write(o.json ? `${jsonForTerminal(d)}\n` : `${formatDiff(d)}\n`);
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('what changed between two snapshots or recordings: fill, rates, ports, census')
    .argument('<a>', 'the earlier recording or snapshot')
    .argument('<b>', 'the later one')
    .addOption(jsonOption('ctop.diff/v1'))
    .action((a: string, b: string, f: { json?: boolean }) => runDiff({ a, b, json: f.json === true }));
}
