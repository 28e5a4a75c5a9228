/** `ctop export-csv RECORDING [-o FILE] [--ports FILE]`: the series as CSV. */
import { readRecording } from '../io/recording.js';
import { portsCsv, windowsCsv } from '../export/csv.js';
import type { Command } from 'commander';
import { writeOutput } from '../io/output.js';

function runExportCsv(o: { file: string; out?: string; ports?: string }): void {
  const rec = readRecording(o.file);
  const text = windowsCsv(rec.snapshots);
  if (o.out === undefined || o.out === '-') process.stdout.write(text);
  else writeOutput(o.out, text);
  if (o.ports !== undefined) writeOutput(o.ports, portsCsv(rec.snapshots));
}

export function registerExportCsv(program: Command): void {
  program
    .command('export-csv')
    .description('a recording as CSV: one row per window (and, with --ports, one row per window and port)')
    .argument('<file>', 'a recording (ctop record) or a snapshot (ctop snapshot --json)')
    .option('-o, --output <file>', 'the windows CSV to write (default: stdout)')
    .option('--ports <file>', 'also write the per-window port rows (long format) here')
    .action((file: string, f: { output?: string; ports?: string }) =>
      runExportCsv({ file, ...(f.output !== undefined ? { out: f.output } : {}), ...(f.ports !== undefined ? { ports: f.ports } : {}) }),
    );
}
