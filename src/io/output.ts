/**
 * Writing a command's output file, with the one-line error the CLI prints.
 *
 * ctop runs as root, often with -o in a directory others can write (/tmp):
 * a link planted at the path would make root overwrite whatever it points
 * at, and a FIFO would hang the command. So the last path component is
 * opened with O_NOFOLLOW (ELOOP on a link), without blocking (O_NONBLOCK:
 * a FIFO with no reader fails at once), and only a regular file is kept and
 * truncated: the truncation follows the checks, so a refused path is left
 * exactly as it was.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { CtopError, ExitCode } from '../errors.js';

const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK; // libuv adds O_CLOEXEC itself

function cannotWrite(file: string, e: unknown, hint: string, exitCode: number): CtopError {
  const code = (e as { code?: string }).code;
  const why =
    code === 'ENOENT' ? 'no such directory'
    : code === 'ELOOP' ? 'it is a symbolic link (ctop runs as root and does not write through links)'
    : code === 'ENXIO' ? 'it is a FIFO with no reader'
    : code === 'EISDIR' ? 'it is a directory'
    : (code ?? String(e));
  return new CtopError(`cannot write ${file}: ${why}`, hint, exitCode);
}

/** Opens FILE for writing from its start, refusing links and anything but a regular file (see the file comment). */
function openRegular(file: string, hint: string, exitCode: number): number {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS, 0o644);
  } catch (e) {
    throw cannotWrite(file, e, hint, exitCode);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new CtopError(`cannot write ${file}: it is not a regular file`, hint, exitCode);
    ftruncateSync(fd, 0);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e instanceof CtopError ? e : cannotWrite(file, e, hint, exitCode);
  }
}

export function writeOutput(file: string, text: string): void {
  const hint = 'give a path to a regular file in a directory you can write';
  const fd = openRegular(file, hint, ExitCode.failure);
  try {
    const bytes = Buffer.from(text);
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
  } catch (e) {
    throw cannotWrite(file, e, hint, ExitCode.failure);
  } finally {
    closeSync(fd);
  }
}

/** Opens -o FILE for a command that writes it as it goes (ctop record): checked before anything is measured, so a bad path is a bad command line. */
export function openOutput(file: string): number {
  return openRegular(file, 'give -o a path to a regular file in a directory you can write', ExitCode.usage);
}
