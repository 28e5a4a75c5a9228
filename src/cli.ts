/**
 * ctop's entry point and its single error boundary: known errors print
 * `ctop: <message>` and `hint: <hint>` and exit with their code; anything
 * else is a bug and prints its stack.
 */
import { Command, CommanderError } from 'commander';
import { CtopError, ExitCode, isNativeError } from './errors.js';
import { runCleanups } from './util/signals.js';
import { parseCount, parseDurationMs } from './util/duration.js';
import { addProbeFlags, parseProbeFlags, type ProbeFlags } from './commands/probeFlags.js';
import { runSnapshot } from './commands/snapshot.js';
import { runDoctor } from './commands/doctor.js';
import { registerTop } from './commands/top.js';
import { registerRecord } from './commands/record.js';
import { registerDiff } from './commands/diff.js';
import { registerReport } from './commands/report.js';
import { registerExportCsv } from './commands/exportCsv.js';
import { registerServe } from './commands/serve.js';
import { registerCensus } from './commands/census.js';
import { registerAdvise } from './commands/advise.js';
import { registerNotrack } from './commands/notrack.js';
import { registerValidate } from './commands/validate.js';
import { registerDemo } from './commands/demo.js';

const VERSION = '0.1.0';

function snapshotAction(opts: ProbeFlags & { duration: string; json?: boolean; top: string; census?: boolean }): Promise<void> {
  return runSnapshot({
    ...parseProbeFlags(opts),
    census: opts.census === true,
    durationMs: parseDurationMs(opts.duration, '--duration', 100, 24 * 3_600_000),
    json: opts.json === true,
    top: parseCount(opts.top, '--top', 0, 1_000_000),
  });
}

export function buildProgram(): Command {
  const program = new Command('ctop')
    .description('ctop: what fills the Linux conntrack table, counted in the kernel with eBPF\n(not the container monitor that shares the name)')
    .version(VERSION)
    .option('-v, --verbose', 'show libbpf and kernel detail on errors')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {} }); // errors go through the boundary below

  addProbeFlags(
    program
      .command('snapshot')
      .description('watch for a window, then report table fill, rates, top ports and tuples, drops')
      .option('-d, --duration <time>', 'length of the window (500ms, 5s, 2m)', '5s')
      .option('--json', 'print the ctop.snapshot/v1 JSON document')
      .option('--top <n>', 'rows of ports and tuples to keep (0: all)', '20')
      .option('--census', 'add a census of the table at the window\'s end (`ctop census`; JSON: the `census` section)'),
  ).action(snapshotAction);

  addProbeFlags(
    program
      .command('doctor')
      .description('what this kernel offers, which probes attach and why others do not, what keeps conntrack on')
      .option('--json', 'print JSON'),
  ).action((opts: ProbeFlags & { json?: boolean }) => runDoctor({ ...parseProbeFlags(opts), json: opts.json === true }));

  // Commands in their own modules register here, one line each:
  // (e.g. registerRecord(program);)
  registerTop(program);
  registerRecord(program);
  registerDiff(program);
  registerReport(program);
  registerExportCsv(program);
  registerServe(program);
  registerCensus(program);
  registerAdvise(program);
  registerNotrack(program);
  registerValidate(program);
  registerDemo(program);

  return program;
}

/** Commander's messages start with "error: "; ours start with "ctop: ". */
function usageError(e: CommanderError): CtopError {
  const msg = e.message.replace(/^error:\s*/, '').split('\n')[0] ?? e.message;
  return new CtopError(msg, '`ctop --help` lists the commands and options', ExitCode.usage);
}

function report(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError) {
    // --help and --version end here with code 0
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    e = usageError(e);
  }
  if (e instanceof CtopError) {
    process.stderr.write(`ctop: ${e.message}\nhint: ${e.hint}\n`);
    if (verbose && e.detail) process.stderr.write(`${e.detail}\n`);
    return e.exitCode;
  }
  if (isNativeError(e)) {
    process.stderr.write(`ctop: ${e.message} (step ${e.step}, errno ${e.errno})\nhint: run \`ctop doctor\`; add --verbose for libbpf's log\n`);
    if (verbose && e.log) process.stderr.write(`${e.log}\n`);
    return ExitCode.kernel;
  }
  process.stderr.write(`ctop: internal error, please report it:\n${e instanceof Error ? e.stack : String(e)}\n`);
  return ExitCode.failure;
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('-v') || argv.includes('--verbose');
  // A crash outside the command's promise chain (a timer, an event handler)
  // still detaches everything before the process ends.
  process.on('uncaughtException', (e) => {
    runCleanups();
    process.exit(report(e, verbose));
  });
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, verbose);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = report(e, false);
  },
);
