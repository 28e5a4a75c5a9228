/** `ctop report FILE -o report.html`: one self-contained HTML page. */
import { readWindows } from '../io/recording.js';
import { reportHtml } from '../export/reportHtml.js';
import type { Command } from 'commander';
import { writeOutput } from '../io/output.js';

function runReport(o: { file: string; out?: string }): void {
  const html = reportHtml(o.file, readWindows(o.file));
  if (o.out === undefined || o.out === '-') process.stdout.write(html);
  else {
    writeOutput(o.out, html);
    process.stderr.write(`ctop: wrote ${o.out}\n`);
  }
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page from a recording: charts, time to full, the last census, sizing')
    .argument('<file>', 'a recording (ctop record) or a snapshot (ctop snapshot --json)')
    .option('-o, --output <file>', 'the HTML file to write (default: stdout)')
    .action((file: string, f: { output?: string }) => runReport({ file, ...(f.output !== undefined ? { out: f.output } : {}) }));
}
