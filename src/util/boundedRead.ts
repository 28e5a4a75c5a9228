/**
 * Reading input ctop did not write, with limits enforced while reading:
 * a size cap checked against fstat before the first byte and counted while
 * streaming (a pipe has no size), devices refused (`/dev/zero` never ends),
 * and JSON refused past a nesting depth before it is parsed, so nothing later
 * (JSON.stringify, a recursive walk) can overflow the stack on it.
 */
import { closeSync, constants as C, fstatSync, openSync, readSync } from 'node:fs';

export class InputLimitError extends Error {}

const CHUNK_BYTES = 1024 * 1024;

/**
 * The file's bytes, at most `maxBytes`: a regular file larger than that is
 * refused from its size, a pipe once it has sent more; character and block
 * devices, sockets and directories are refused outright.
 */
export function readFileBounded(file: string, maxBytes: number): Buffer {
  const fd = openSync(file, C.O_RDONLY);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new InputLimitError('it is a directory');
    if (st.isCharacterDevice() || st.isBlockDevice() || st.isSocket()) throw new InputLimitError('it is a device, not a file');
    if (st.isFile() && st.size > maxBytes) throw new InputLimitError(`the file is ${st.size} bytes, more than the ${maxBytes} allowed`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = readSync(fd, buf, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new InputLimitError(`it sent more than the ${maxBytes} bytes allowed`);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** Deepest nesting of [ and { in JSON text (strings skipped); stops counting past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** ctop's own documents nest a handful of levels; anything far deeper is not one. */
export const MAX_JSON_DEPTH = 64;
