/** Writing a command's output file, with the one-line error the CLI prints. */
import { writeFileSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';

export function writeOutput(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CtopError(`cannot write ${file}: ${code === 'ENOENT' ? 'no such directory' : (code ?? String(e))}`, 'give a path in a directory you can write', ExitCode.failure);
  }
}
