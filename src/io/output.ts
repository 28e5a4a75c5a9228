/** Writing a command's output file, with the one-line error the CLI prints. */
import { openSync, writeFileSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';

function cannotWrite(file: string, e: unknown, hint: string, exitCode: number): CtopError {
  const code = (e as { code?: string }).code;
  return new CtopError(`cannot write ${file}: ${code === 'ENOENT' ? 'no such directory' : (code ?? String(e))}`, hint, exitCode);
}

export function writeOutput(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    throw cannotWrite(file, e, 'give a path in a directory you can write', ExitCode.failure);
  }
}

/** Opens -o FILE for a command that writes it as it goes (ctop record): checked before anything is measured, so a bad path is a bad command line. */
export function openOutput(file: string): number {
  try {
    return openSync(file, 'w', 0o644);
  } catch (e) {
    throw cannotWrite(file, e, 'give -o a path in a directory you can write', ExitCode.usage);
  }
}
