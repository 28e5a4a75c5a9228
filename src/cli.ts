/**
 * ctop's entry point and its single error boundary: known errors print
 * `ctop: <message>` and `hint: <hint>` and exit with their code; anything
 * else is a bug and prints its stack.
 */
import type { Command, CommanderError } from 'commander';
import { CtopError, ExitCode, isNativeError } from './errors.js';
import { runCleanups } from './util/signals.js';
import { cleanText } from './util/sanitize.js';

const VERSION = '0.1.0';

/**
 * Every command, in the order `ctop --help` lists them, each loaded only
 * when it runs: `ctop --version` loads none, `ctop doctor` only doctor's
 * module, so only `top` pays for blessed and only `serve` for prom-client.
 */
/** What each command module exports: it declares its command (options, help, action) on the program. */
type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  demo: async () => (await import('./commands/demo.js')).registerDemo,
  snapshot: async () => (await import('./commands/snapshot.js')).registerSnapshot,
  doctor: async () => (await import('./commands/doctor.js')).registerDoctor,
  top: async () => (await import('./commands/top.js')).registerTop,
  record: async () => (await import('./commands/record.js')).registerRecord,
  diff: async () => (await import('./commands/diff.js')).registerDiff,
  report: async () => (await import('./commands/report.js')).registerReport,
  'export-csv': async () => (await import('./commands/exportCsv.js')).registerExportCsv,
  serve: async () => (await import('./commands/serve.js')).registerServe,
  census: async () => (await import('./commands/census.js')).registerCensus,
  advise: async () => (await import('./commands/advise.js')).registerAdvise,
  notrack: async () => (await import('./commands/notrack.js')).registerNotrack,
  validate: async () => (await import('./commands/validate.js')).registerValidate,
};

/** commander, loaded after any early start (see EARLY) */
let commander: typeof import('commander') | undefined;

/**
 * Kernel work a command can start before commander and its modules load, on a
 * native thread, so that both proceed at once (2 CPUs: about 40 ms off a
 * census). Only what argv alone decides; the command checks it before use.
 */
const EARLY: Record<string, () => Promise<(argv: readonly string[]) => void>> = {
  census: async () => (await import('./commands/censusEarly.js')).startCensusEarly,
};

/**
 * The commands argv needs: the one it names (ctop's own options take no
 * value, so the first word that is not an option is the command); none for
 * a bare --version; otherwise all of them (help lists them all, and `top`,
 * the default command, reports an unknown word).
 */
function commandsFor(argv: readonly string[]): string[] {
  const word = argv.find((a) => !a.startsWith('-'));
  if (word !== undefined && Object.hasOwn(COMMANDS, word)) return [word];
  if (word === undefined && argv.some((a) => a === '-V' || a === '--version')) return [];
  return Object.keys(COMMANDS);
}

async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const names = commandsFor(argv);
  if (names.length === 1 && Object.hasOwn(EARLY, names[0]!)) (await EARLY[names[0]!]!())(argv);
  const registering = Promise.all(names.map((n) => COMMANDS[n]!()));
  registering.catch(() => {}); // awaited below; a failure meanwhile is not "unhandled"
  commander = await import('commander');
  const program = new commander.Command('ctop')
    .description('ctop: what fills the Linux conntrack table, counted in the kernel with eBPF\n(not the container monitor that shares the name)')
    .version(VERSION)
    .option('-v, --verbose', 'show libbpf and kernel detail on errors')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => {} }); // errors go through the boundary below
  for (const register of await registering) register(program);
  return program;
}

/** Commander's own errors (--help, --version, usage), once commander is loaded. */
function isCommanderError(e: unknown): e is CommanderError {
  return commander !== undefined && e instanceof commander.CommanderError;
}

/** Commander's messages start with "error: "; ours start with "ctop: ". */
function usageError(e: CommanderError): CtopError {
  const msg = e.message.replace(/^error:\s*/, '').split('\n')[0] ?? e.message;
  return new CtopError(msg, '`ctop --help` lists the commands and options', ExitCode.usage);
}

function report(e: unknown, verbose: boolean): number {
  if (isCommanderError(e)) {
    // --help and --version end here with code 0
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    e = usageError(e);
  }
  if (e instanceof CtopError) {
    process.stderr.write(`ctop: ${cleanText(e.message, 4000)}\nhint: ${cleanText(e.hint, 4000)}\n`);
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
    const program = await buildProgram(argv);
    await program.parseAsync(argv, { from: 'user' });
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
